// swift-tools-version:6.2
import PackageDescription

// The examples: their own package, so that a user of `Redlock` never resolves GRDB.
let strictSwift: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "locklock-examples",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "locklock", path: ".."),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
    ],
    targets: [
        // Throwaway redis-server masters on Unix sockets, for the demos and the tests.
        .target(
            name: "LocalMasters",
            dependencies: [.product(name: "Redlock", package: "locklock")],
            path: "Shared/LocalMasters",
            swiftSettings: strictSwift
        ),

        // MARK: Exactly once: an at-least-once feed handled at most once per event
        .target(
            name: "ExactlyOnce",
            dependencies: [.product(name: "Redlock", package: "locklock"), .product(name: "GRDB", package: "GRDB.swift")],
            path: "ExactlyOnce/Sources/ExactlyOnce",
            swiftSettings: strictSwift
        ),
        .executableTarget(
            name: "exactly-once-demo",
            dependencies: ["ExactlyOnce", "LocalMasters", .product(name: "Redlock", package: "locklock")],
            path: "ExactlyOnce/Sources/exactly-once-demo",
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "ExactlyOnceTests",
            dependencies: ["ExactlyOnce", "LocalMasters", .product(name: "Redlock", package: "locklock")],
            path: "ExactlyOnce/Tests/ExactlyOnceTests",
            swiftSettings: strictSwift
        ),

        // MARK: URL shortener: one long URL shortened once, however many identical requests race
        .target(
            name: "URLShortener",
            dependencies: [
                .product(name: "Redlock", package: "locklock"),
                .product(name: "HummingbirdIdempotency", package: "locklock"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "URLShortener/Sources/URLShortener",
            swiftSettings: strictSwift
        ),
        .executableTarget(
            name: "url-shortener",
            dependencies: [
                "URLShortener", "LocalMasters",
                .product(name: "Redlock", package: "locklock"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "URLShortener/Sources/url-shortener",
            swiftSettings: strictSwift
        ),
        .executableTarget(
            name: "fire-parallel-requests",
            dependencies: ["URLShortener", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "URLShortener/Sources/fire-parallel-requests",
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "URLShortenerTests",
            dependencies: [
                "URLShortener", "LocalMasters",
                .product(name: "Redlock", package: "locklock"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "URLShortener/Tests/URLShortenerTests",
            swiftSettings: strictSwift
        ),
    ]
)
