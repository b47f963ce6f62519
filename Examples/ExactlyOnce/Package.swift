// swift-tools-version:6.2
import PackageDescription

// An at-least-once feed handled at most once per event, with IdempotencyGuard.
let strictSwift: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "ExactlyOnce",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "locklock", path: "../.."),
        .package(path: "../LocalMasters"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
    ],
    targets: [
        .target(
            name: "ExactlyOnce",
            dependencies: [.product(name: "Redlock", package: "locklock"), .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: strictSwift
        ),
        .executableTarget(
            name: "exactly-once-demo",
            dependencies: ["ExactlyOnce", .product(name: "LocalMasters", package: "LocalMasters"), .product(name: "Redlock", package: "locklock")],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "ExactlyOnceTests",
            dependencies: ["ExactlyOnce", .product(name: "LocalMasters", package: "LocalMasters"), .product(name: "Redlock", package: "locklock")],
            swiftSettings: strictSwift
        ),
    ]
)
