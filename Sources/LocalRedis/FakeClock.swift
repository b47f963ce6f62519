#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Servers whose clock lies, through libfaketime (Debian's `libfaketime`): for clock-jump and
/// clock-drift faults.
public enum FakeClock {
    /// libfaketime's preload library.
    public static let library = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
    /// tcmalloc: Debian's redis-server needs it loaded before libfaketime to start under it.
    public static let tcmalloc = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"

    /// Whether both libraries are installed (`make deps` installs them).
    public static var isAvailable: Bool {
        [library, tcmalloc].allSatisfy { (path: String) in access(path, R_OK) == 0 }
    }

    /// A clock offset read from `timestampFile` on every call (write `+60` to jump a minute
    /// ahead), as server options.
    public static func offset(readFrom timestampFile: String) -> RedisServerOptions {
        RedisServerOptions(environment: environment(["FAKETIME_TIMESTAMP_FILE": timestampFile, "FAKETIME_NO_CACHE": "1"]))
    }

    /// A clock that runs `rate` times as fast as real time (1.005 is 0.5 % fast), as server
    /// options.
    public static func rate(_ rate: Double) -> RedisServerOptions {
        RedisServerOptions(environment: environment(["FAKETIME": "+0 x\(rate)"]))
    }

    private static func environment(_ settings: [String: String]) -> [String: String] {
        settings.merging(["LD_PRELOAD": "\(tcmalloc) \(library)"]) { first, _ in first }
    }
}
