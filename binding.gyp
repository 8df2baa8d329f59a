{
  "targets": [
    {
      "target_name": "nsa_flow",
      "sources": ["<!@(node -p \"require('fs').readdirSync('native/kernels').filter(f => f.endsWith('.cpp')).map(f => 'native/kernels/' + f).concat(require('fs').readdirSync('native/addon').filter(f => f.endsWith('.cpp')).map(f => 'native/addon/' + f)).join(' ')\")", "<!@(node scripts/blas-flags.cjs --sources)"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "defines": ["NAPI_VERSION=8", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS", "NSA_FLOW_BUILD_SYSTEM=\"node-gyp\""],
      "cflags_cc": [
        "-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wshadow", "-Wconversion",
        "<!@(node -p \"process.env.NSA_FLOW_WERROR === '1' ? '-Werror' : ''\")",
        "-isystem", "<!(node -p \"require('path').dirname(require.resolve('node-addon-api/package.json'))\")",
        "<!@(node scripts/blas-flags.cjs --cflags)"
      ],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++20"],
      "xcode_settings": {
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "OTHER_CPLUSPLUSFLAGS": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "<!@(node scripts/blas-flags.cjs --cflags)"]
      },
      "libraries": ["<!@(node scripts/blas-flags.cjs --libs)"]
    }
  ]
}
