// The prebuilt Linux addon must load on every glibc distribution Node 20 runs on: glibc 2.28 and GCC 8's
// libstdc++ (GLIBCXX_3.4.25) at the oldest (RHEL 8, Debian 10). A reference takes the default version of a
// symbol in the libraries it is linked against, so building on a newer system can silently raise the floor.
// These are the references whose default version moved past the floor, bound to their oldest version, which
// newer libraries keep (`npm run test:package` reads every version the binary needs; docs/packaging.md).
#pragma once

#if defined(__linux__) && defined(__GLIBC__)
// glibc 2.32 moved pthread_sigmask from libpthread into libc under a new version; the old one is the same call.
#if defined(__x86_64__)
__asm__(".symver pthread_sigmask,pthread_sigmask@GLIBC_2.2.5");
#elif defined(__aarch64__)
__asm__(".symver pthread_sigmask,pthread_sigmask@GLIBC_2.17");
#endif
// GCC 12 gave condition_variable::wait(unique_lock&) a new version only so that thread cancellation can
// unwind through it (the old one is noexcept); the addon never cancels a thread.
__asm__(".symver _ZNSt18condition_variable4waitERSt11unique_lockISt5mutexE,"
        "_ZNSt18condition_variable4waitERSt11unique_lockISt5mutexE@GLIBCXX_3.4.11");
#endif
