{
  "targets": [
    {
      "target_name": "edgefeed",
      "sources": [
        "src/addon.cc",
        "src/handle.cc",
        "src/ops.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!(node scripts/paths.js include)"
      ],
      "cflags_cc": [
        "-Wall", "-Wextra", "-fexceptions"
      ],
      "cflags_cc!": ["-fno-exceptions"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "libraries": [
        "<!(node scripts/paths.js lib)",
        "<!@(pkg-config --libs lmdb libsodium jansson hiredis)",
        "-lpthread"
      ]
    }
  ]
}
