// swift-tools-version:6.1
//
// rtpstream — a message hub for real-time payment rails (ICOM-style pull/send API).
// One Swift module per responsibility; C libraries are reached only through the thin
// system-library shims (C*), each imported by exactly one Swift module.

import PackageDescription

let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "rtpstream",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "rtpstream", targets: ["rtpstream"]),
        .executable(name: "loadtest", targets: ["loadtest"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        // ---- C shims: pkg-config discovery, macros turned into prefixed functions ----
        .systemLibrary(name: "CUV", pkgConfig: "libuv",
                       providers: [.apt(["libuv1-dev"])]),
        .systemLibrary(name: "CHiredis", pkgConfig: "hiredis",
                       providers: [.apt(["libhiredis-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl",
                       providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CLibXML2", pkgConfig: "libxml-2.0",
                       providers: [.apt(["libxml2-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CLogStore"),   // header-only: hardware CRC32C, prefetch (for LogStore)

        // ---- Swift modules, one responsibility each ----
        .target(name: "EventLoop", dependencies: ["CUV"], swiftSettings: strict),
        .target(name: "HTTP", dependencies: ["CZlib"], swiftSettings: strict),
        .target(name: "HTTPClient", dependencies: ["HTTP", "TLS"], swiftSettings: strict),
        .target(name: "HTTPServer", dependencies: [
            "EventLoop", "HTTP", "TLS",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
        ], swiftSettings: strict),
        .target(name: "TLS", dependencies: [
            "COpenSSL",
            .product(name: "Metrics", package: "swift-metrics"),
        ], swiftSettings: strict),
        .target(name: "LogStore", dependencies: [
            "CLogStore",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
        ], swiftSettings: strict),
        .target(name: "ISO20022", dependencies: [
            "CLibXML2",
            .product(name: "Metrics", package: "swift-metrics"),
        ], swiftSettings: strict),
        .target(name: "Streaming", swiftSettings: strict),
        .target(name: "Coordination", dependencies: [
            "CHiredis", "EventLoop",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
        ], swiftSettings: strict),
        .target(name: "Hub", dependencies: [
            "EventLoop", "HTTP", "HTTPServer", "TLS", "LogStore", "ISO20022", "Streaming", "Coordination",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ], swiftSettings: strict),
        .executableTarget(name: "rtpstream", dependencies: [
            "Hub", "TLS", "HTTP", "HTTPClient", "ISO20022", "LogStore",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: strict),
        .executableTarget(name: "loadtest", dependencies: [
            "EventLoop", "HTTP", "TLS", "HTTPClient", "ISO20022",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Histogram", package: "hdrhistogram-swift"),
        ], path: "LoadTests/loadtest", swiftSettings: strict),
        .executableTarget(name: "tlsbench", dependencies: ["TLS"],
                          path: "LoadTests/tlsbench", swiftSettings: strict),
        .executableTarget(name: "xmlbench", dependencies: ["ISO20022"],
                          path: "LoadTests/xmlbench", swiftSettings: strict),
        .executableTarget(name: "pullbench", dependencies: [
            "HTTP", "ISO20022", "TestSupport",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "LoadTests/pullbench", swiftSettings: strict),
        .executableTarget(name: "redisbench", dependencies: [
            "Coordination", "EventLoop", "TestSupport",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ], path: "LoadTests/redisbench", swiftSettings: strict),
        .executableTarget(name: "logbench", dependencies: [
            "LogStore",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ], path: "LoadTests/logbench", swiftSettings: strict),
        // Child process for LogStoreTests' kill -9 test: appends in a loop, prints durable offsets.
        .executableTarget(name: "logstore-crash", dependencies: [
            "LogStore",
            .product(name: "Logging", package: "swift-log"),
        ], path: "Tests/Support/LogStoreCrash", swiftSettings: strict),

        // ---- fuzz harnesses (libFuzzer when built with -sanitize=fuzzer -DFUZZING;
        //      otherwise a replay tool that runs the harness over corpus files) ----
        .target(name: "FuzzDriver", path: "Tests/Fuzz/Driver", swiftSettings: strict),
        .executableTarget(name: "fuzz-http", dependencies: ["HTTP", "FuzzDriver"],
                          path: "Tests/Fuzz/HTTP", exclude: ["corpus"], swiftSettings: strict),
        .executableTarget(name: "fuzz-multipart", dependencies: ["HTTP", "FuzzDriver"],
                          path: "Tests/Fuzz/Multipart", exclude: ["corpus"], swiftSettings: strict),
        .executableTarget(name: "fuzz-prescan", dependencies: ["ISO20022", "FuzzDriver"],
                          path: "Tests/Fuzz/PreScan", exclude: ["corpus"], swiftSettings: strict),

        // ---- tests ----
        .target(name: "TestSupport", dependencies: ["HTTP", "TLS"], path: "Tests/TestSupport", swiftSettings: strict),
        .testTarget(name: "HTTPTests", dependencies: ["HTTP", "HTTPServer", "EventLoop", "TLS", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "EndToEndTests", dependencies: ["Hub", "TestSupport", "HTTPClient", "ISO20022", "HTTP", "TLS"], swiftSettings: strict),
        .testTarget(name: "LogStoreTests", dependencies: [
            "LogStore", "TestSupport",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "MetricsTestKit", package: "swift-metrics"),
        ], swiftSettings: strict),
        .testTarget(name: "ISO20022Tests", dependencies: ["ISO20022", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "TLSTests", dependencies: [
            "TLS",
            .product(name: "MetricsTestKit", package: "swift-metrics"),
        ], swiftSettings: strict),
        .testTarget(name: "HubTests", dependencies: ["Hub"], swiftSettings: strict),
        .testTarget(name: "StreamingTests", dependencies: ["Streaming"], swiftSettings: strict),
        .testTarget(name: "CoordinationTests", dependencies: [
            "Coordination", "EventLoop", "TestSupport",
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: strict),
    ]
)
