{
  "targets": [
    {
      "target_name": "kernel_ipc",
      "sources": ["src/addon.cc", "src/errors.cc", "src/fifo.cc", "src/futex.cc", "src/ipc.cc", "src/msg.cc", "src/sem.cc", "src/shm.cc", "src/shm/attachment.cc", "src/shm/map_count.cc", "src/shm/pages.cc", "src/shm/read_only.cc", "src/signals.cc", "src/waiter/blocking.cc", "src/waiter/pool.cc"],
      "include_dirs": ["src"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS", "NODE_ADDON_API_CPP_EXCEPTIONS_ALL"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra"],
      "libraries": ["-ldl"]
    }
  ]
}
