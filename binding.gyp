{
  "targets": [
    {
      "target_name": "iomux",
      "sources": [
        "native/addon.cc",
        "native/address.cc",
        "native/bulk_receive.cc",
        "native/bulk_send.cc",
        "native/constants.cc",
        "native/epoll.cc",
        "native/errors.cc",
        "native/io_uring.cc",
        "native/loop_watcher.cc",
        "native/poll.cc",
        "native/select.cc",
        "native/sockets.cc",
        "native/tls.cc",
        "native/tls_cert.cc",
        "native/wait_thread.cc"
      ],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "defines": ["NAPI_VERSION=8"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "conditions": [
        ["OS=='win'", {"sources": ["native/platform_win.cc"], "libraries": ["-lws2_32"]}],
        # node-gyp's headers hold libuv's, and node exports its symbols: the attached reactor can
        # let Node's own loop watch the epoll descriptor (native/loop_watcher.cc).
        ["OS!='win'", {"defines": ["IOMUX_LIBUV"]}]
      ]
    }
  ]
}
