// swift-tools-version:6.2
import PackageDescription

// One long URL shortened once, however many identical requests race.
let strictSwift: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "URLShortener",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "locklock", path: "../.."),
        .package(path: "../LocalMasters"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
    ],
    targets: [
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
            swiftSettings: strictSwift
        ),
        .executableTarget(
            name: "url-shortener",
            dependencies: [
                "URLShortener",
                .product(name: "LocalMasters", package: "LocalMasters"),
                .product(name: "Redlock", package: "locklock"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift
        ),
        .executableTarget(
            name: "fire-parallel-requests",
            dependencies: ["URLShortener", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "URLShortenerTests",
            dependencies: [
                "URLShortener",
                .product(name: "LocalMasters", package: "LocalMasters"),
                .product(name: "Redlock", package: "locklock"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),
    ]
)
