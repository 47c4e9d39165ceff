// swift-tools-version:6.0
import PackageDescription

// Build flags: every Swift target is compiled for x86-64 with AVX2 + FMA (Haswell level),
// never for the host CPU, so binaries run on any AVX2 machine (see machine-notes). Release builds
// keep Swift's safety checks (-O, not -Ounchecked): hot loops use unsafe pointers and wrapping
// arithmetic, so the checks cost little, and a logic error stays a diagnosable trap instead of
// silent memory corruption inside a user's process.
let simdFlags: [SwiftSetting] = [
    .unsafeFlags(["-target-cpu", "haswell"]),
]

let package = Package(
    name: "samix",
    products: [
        .library(name: "SAMix", targets: ["SAMix"]),
        .library(name: "samix", type: .dynamic, targets: ["SAMixCAPI"]),
        .executable(name: "samix-bench", targets: ["samix-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CDNNL", path: "Sources/CDNNL",
                       providers: [.apt(["libdnnl-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib",
                       providers: [.apt(["zlib1g-dev"])]),
        // The engine, in layers: each target depends only on the ones above it in this list, so an
        // upward import does not compile. `SAMix` re-exports them all.
        .target(name: "SAMixCore", dependencies: ["COpenBLAS", "CZlib"],
                swiftSettings: simdFlags),
        .target(name: "SAMixOps", dependencies: ["SAMixCore", "COpenBLAS", "CDNNL"],
                swiftSettings: simdFlags),
        .target(name: "SAMixNN", dependencies: ["SAMixOps"],
                swiftSettings: simdFlags),
        .target(name: "SAMixData", dependencies: ["SAMixNN"],
                swiftSettings: simdFlags),
        .target(name: "SAMixMixing", dependencies: ["SAMixData"],
                swiftSettings: simdFlags),
        .target(name: "SAMixTraining", dependencies: ["SAMixMixing"],
                swiftSettings: simdFlags),
        .target(name: "SAMix", dependencies: ["SAMixTraining"],
                swiftSettings: simdFlags),
        .target(name: "SAMixCAPI", dependencies: ["SAMix"],
                swiftSettings: simdFlags),
        .executableTarget(name: "samix-bench",
                          dependencies: ["SAMix",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: simdFlags),
        .testTarget(name: "SAMixTests",
                    dependencies: ["SAMix", "SAMixCore", "SAMixOps", "SAMixNN", "SAMixData", "SAMixMixing",
                                   "SAMixTraining", "samix-bench"],
                    swiftSettings: []),
    ]
)
