/*
 * The plain copy limit for the file-transfer benchmark: one file over one loopback TCP connection,
 * sent with sendfile(2) and received with read(2) + write(2) into a file, as `nc` would. No framing,
 * no hash, no resume: what the kernel costs, and nothing else.
 *
 *   file-pipe --listen [--port 0] (--send FILE | --recv FILE)
 *   file-pipe --connect PORT       (--send FILE | --recv FILE)
 *
 * The listening side prints {"port":N} once it listens and serves one connection. The sender
 * sendfile()s the whole file, half-closes, and waits for the receiver's close, so its time covers
 * the receiver's last write. Each side prints one JSON line: {"role":..., "bytes":N, "seconds":S,
 * "cpuSeconds":C}, C being its own user + system time (getrusage).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/sendfile.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

#define READ_SIZE (256 * 1024)

static int listen_on(long port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) die("bind");
  if (listen(fd, 16) != 0) die("listen");
  socklen_t len = sizeof addr;
  if (getsockname(fd, (struct sockaddr *)&addr, &len) != 0) die("getsockname");
  printf("{\"port\":%u}\n", ntohs(addr.sin_port));
  fflush(stdout);
  return fd;
}

static int connect_to(long port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) die("connect");
  return fd;
}

static unsigned long long send_file(int sock, const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("open %s", path);
  struct stat st;
  if (fstat(fd, &st) != 0) die("fstat");
  off_t offset = 0;
  while (offset < st.st_size) {
    size_t want = (size_t)(st.st_size - offset) > 0x7ffff000 ? 0x7ffff000 : (size_t)(st.st_size - offset);
    ssize_t n = sendfile(sock, fd, &offset, want);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) die("sendfile");
  }
  close(fd);
  /* Half-close, then wait for the receiver's close: it has written everything by then. */
  if (shutdown(sock, SHUT_WR) != 0) die("shutdown");
  char byte;
  while (read(sock, &byte, 1) > 0) {
  }
  return (unsigned long long)st.st_size;
}

static unsigned long long receive_file(int sock, const char *path) {
  static char buffer[READ_SIZE];
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) die("open %s", path);
  unsigned long long total = 0;
  for (;;) {
    ssize_t got = read(sock, buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) die("read");
    if (got == 0) break;
    for (ssize_t done = 0; done < got;) {
      ssize_t n = write(fd, buffer + done, (size_t)(got - done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) die("write");
      done += n;
    }
    total += (unsigned long long)got;
  }
  close(fd);
  return total;
}

int main(int argc, char **argv) {
  int listening = 0;
  long port = 0;
  const char *send_path = NULL, *recv_path = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--listen") == 0) listening = 1;
    else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) port = parse_long("--port", argv[++i], 0, 65535);
    else if (strcmp(argv[i], "--connect") == 0 && i + 1 < argc) port = parse_long("--connect", argv[++i], 1, 65535);
    else if (strcmp(argv[i], "--send") == 0 && i + 1 < argc) send_path = argv[++i];
    else if (strcmp(argv[i], "--recv") == 0 && i + 1 < argc) recv_path = argv[++i];
    else die("usage: file-pipe (--listen [--port P] | --connect PORT) (--send FILE | --recv FILE)");
  }
  if ((send_path == NULL) == (recv_path == NULL)) die("give one of --send FILE or --recv FILE");
  if (!listening && port == 0) die("give --listen or --connect PORT");
  int sock;
  if (listening) {
    int listener = listen_on(port);
    sock = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    if (sock < 0) die("accept");
    close(listener);
  } else {
    sock = connect_to(port);
  }
  int one = 1;
  setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  uint64_t start = now_ns();
  unsigned long long bytes = send_path ? send_file(sock, send_path) : receive_file(sock, recv_path);
  double seconds = (double)(now_ns() - start) / 1e9;
  close(sock);
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  double cpu = (double)usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6 + (double)usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6;
  printf("{\"role\":\"%s\",\"bytes\":%llu,\"seconds\":%.6f,\"cpuSeconds\":%.6f}\n", send_path ? "send" : "recv", bytes, seconds, cpu);
  return 0;
}
