import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Log lines on standard error, in the format of swift-log's `StreamLogHandler`, with metadata
/// formatted only when a line is written.
///
/// `StreamLogHandler` re-formats all of its metadata every time a key is set, and Hummingbird
/// sets one per request: about 5 % of the server's CPU under load in a profile, for lines that
/// are never written at the default level. Standard error also keeps standard output clean
/// for `locklock acquire`, whose output is the lock value.
struct StderrLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String, logLevel: Logger.Level) {
        self.label = label
        self.logLevel = logLevel
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let explicit = event.metadata { merged.merge(explicit) { $1 } }
        if let error = event.error {
            merged["error.message"] = "\(error)"
            merged["error.type"] = "\(String(reflecting: type(of: error)))"
        }
        let fields = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let text = "\(Self.timestamp()) \(event.level) \(label):\(fields.isEmpty ? "" : " " + fields) [\(event.source)] \(event.message)\n"
        // One write(2) per line, so lines from different threads do not interleave.
        var bytes = Array(text.utf8)
        _ = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
    }

    private static func timestamp() -> String {
        var now = time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        var buffer = [CChar](repeating: 0, count: 64)
        let count = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S%z", &parts)
        return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Routes every logger of the process to ``StderrLogHandler`` at the level named by
/// `LOCKLOCK_LOG_LEVEL` (trace, debug, info, notice, warning, error, critical; default info).
/// Call once, before any logger is made.
func bootstrapLogging() {
    let name = getenv("LOCKLOCK_LOG_LEVEL").map { String(cString: $0) } ?? "info"
    let level = Logger.Level(rawValue: name.lowercased()) ?? .info
    LoggingSystem.bootstrap { label in StderrLogHandler(label: label, logLevel: level) }
}
