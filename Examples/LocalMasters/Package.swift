// swift-tools-version:6.2
import PackageDescription

// Throwaway redis-server masters on Unix sockets, for the examples' demos and tests.
let package = Package(
    name: "LocalMasters",
    platforms: [.macOS(.v15)],
    products: [.library(name: "LocalMasters", targets: ["LocalMasters"])],
    dependencies: [.package(name: "locklock", path: "../..")],
    targets: [
        .target(
            name: "LocalMasters",
            dependencies: [.product(name: "Redlock", package: "locklock")],
            swiftSettings: [
                .swiftLanguageMode(.v6), .enableUpcomingFeature("ExistentialAny"), .enableUpcomingFeature("MemberImportVisibility"),
            ]
        )
    ]
)
