// swift-tools-version:6.0
import PackageDescription

let strictSwift: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "locklock",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "RedisWire", targets: ["RedisWire"]),
        .library(name: "Redlock", targets: ["Redlock"]),
        .library(name: "RedlockTestSupport", targets: ["RedlockTestSupport"]),
        .library(name: "LocklockServer", targets: ["LocklockServer"]),
        .executable(name: "locklock", targets: ["locklock"]),
        .executable(name: "redlock-bench", targets: ["redlock-bench"]),
        .executable(name: "exactly-once-demo", targets: ["exactly-once-demo"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CHiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        .target(
            name: "RedisWire",
            dependencies: [
                "CHiredis",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift
        ),
        .target(
            name: "Redlock",
            dependencies: [
                "RedisWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSwift
        ),
        .target(
            name: "RedlockTestSupport",
            dependencies: [
                "RedisWire",
            ],
            swiftSettings: strictSwift
        ),
        .target(
            name: "LocklockServer",
            dependencies: [
                "Redlock",
                "RedisWire",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSwift
        ),
        .executableTarget(
            name: "locklock",
            dependencies: [
                "LocklockServer",
                "Redlock",
                "RedisWire",
                "RedlockTestSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strictSwift
        ),
        .executableTarget(
            name: "redlock-bench",
            dependencies: [
                "RedisWire",
                "Redlock",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),
        // Examples: runnable, tested uses of the library.
        .target(
            name: "ExactlyOnce",
            dependencies: ["Redlock", "RedisWire"],
            path: "Examples/ExactlyOnce/Sources/ExactlyOnce",
            swiftSettings: strictSwift
        ),
        .executableTarget(
            name: "exactly-once-demo",
            dependencies: ["ExactlyOnce", "Redlock", "RedlockTestSupport"],
            path: "Examples/ExactlyOnce/Sources/exactly-once-demo",
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "ExactlyOnceTests",
            dependencies: ["ExactlyOnce", "Redlock", "RedisWire", "RedlockTestSupport"],
            path: "Examples/ExactlyOnce/Tests/ExactlyOnceTests",
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "RedisWireTests",
            dependencies: ["RedisWire", "RedlockTestSupport", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "RedlockTests",
            dependencies: [
                "Redlock", "RedisWire", "RedlockTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "LocklockServerTests",
            dependencies: [
                "LocklockServer", "Redlock", "RedisWire", "RedlockTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: strictSwift
        ),
    ]
)
