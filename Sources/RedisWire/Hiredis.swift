import CHiredis
import NIOCore

/// Owns one hiredis `redisReader`: bytes go in, decoded replies come out.
///
/// Not thread-safe; each connection's channel handler owns one and uses it on its event loop.
final class HiredisReader {
    private let reader: UnsafeMutablePointer<redisReader>

    init() {
        guard let reader = redisReaderCreate() else {
            fatalError("hiredis could not allocate a reader (out of memory)")
        }
        self.reader = reader
    }

    /// How the reply under construction is being read: decoded (true) or skipped (false);
    /// nil when no reply is partway. A reply is finished the way it was begun.
    private var partway: Bool?

    /// Whether part of a reply has been read and the rest is awaited.
    var isPartway: Bool { partway != nil }

    deinit {
        // A skipped array's "object" is its type cast to a pointer: not hiredis's to free.
        if partway == false { reader.pointee.reply = nil }
        redisReaderFree(reader)
    }

    /// Hands bytes read from the socket to the parser.
    func feed(_ buffer: ByteBuffer) throws(RedisWireError) {
        let status = buffer.withUnsafeReadableBytes { bytes -> Int32 in
            guard let base = bytes.baseAddress, bytes.count > 0 else { return REDIS_OK }
            return redisReaderFeed(reader, base.assumingMemoryBound(to: CChar.self), bytes.count)
        }
        if status != REDIS_OK { throw readerError() }
    }

    /// The next complete reply, or nil when more bytes are needed.
    func next() throws(RedisWireError) -> Result<RESPValue, RedisWireError>? {
        if partway == false {
            // Its objects were never built; only a caller out of step with the replies asks.
            throw RedisWireError(.protocolError, "a reply begun as skipped cannot be decoded")
        }
        guard let raw = try read(decoding: true) else { return nil }
        defer { freeReplyObject(raw) }
        let reply = raw.assumingMemoryBound(to: redisReply.self)
        if reply.pointee.type == REDIS_REPLY_ERROR {
            return .failure(RedisWireError(.serverError, Self.text(reply.pointee)))
        }
        return .success(Self.value(reply.pointee))
    }

    /// Consumes the next complete reply without decoding it, or returns false when more bytes
    /// are needed. hiredis builds no reply objects while the reader has no object functions, so
    /// a reply the caller will drop (a transaction's `+OK` and `+QUEUED`) costs no allocation.
    /// A reply already begun decoded is finished decoded, and freed.
    func skip() throws(RedisWireError) -> Bool {
        let decoding = partway ?? false
        guard let raw = try read(decoding: decoding) else { return false }
        if decoding { freeReplyObject(raw) }
        return true
    }

    /// One `redisReaderGetReply`, with hiredis's object functions on (`decoding`) or off, and
    /// the way the reply was begun remembered while it is partway. Without object functions
    /// the returned pointer is the reply's type, not an object.
    private func read(decoding: Bool) throws(RedisWireError) -> UnsafeMutableRawPointer? {
        let functions = reader.pointee.fn
        if !decoding { reader.pointee.fn = nil }
        defer { reader.pointee.fn = functions }
        var raw: UnsafeMutableRawPointer?
        let status = redisReaderGetReply(reader, &raw)
        let begun = raw == nil && reader.pointee.ridx >= 0
        // A skipped reply that ended (or failed: hiredis frees only what it built) leaves no
        // object behind, only possibly its type in the reply slot.
        if !decoding && !begun { reader.pointee.reply = nil }
        partway = begun ? decoding : nil
        if status != REDIS_OK { throw readerError() }
        return raw
    }

    private func readerError() -> RedisWireError {
        RedisWireError(.protocolError, "hiredis: " + String(cString: CHiredis_readerError(reader)))
    }

    private static func text(_ reply: redisReply) -> String {
        guard let str = reply.str, reply.len > 0 else { return "" }
        return str.withMemoryRebound(to: UInt8.self, capacity: reply.len) {
            String(decoding: UnsafeBufferPointer(start: $0, count: reply.len), as: UTF8.self)
        }
    }

    private static func value(_ reply: redisReply) -> RESPValue {
        switch reply.type {
        case REDIS_REPLY_STRING:
            guard let str = reply.str, reply.len > 0 else { return .bulkString([]) }
            return str.withMemoryRebound(to: UInt8.self, capacity: reply.len) {
                .bulkString(Array(UnsafeBufferPointer(start: $0, count: reply.len)))
            }
        case REDIS_REPLY_STATUS:
            return .simpleString(text(reply))
        case REDIS_REPLY_INTEGER:
            return .integer(Int64(reply.integer))
        case REDIS_REPLY_NIL:
            return .null
        case REDIS_REPLY_ERROR:
            return .error(text(reply))
        case REDIS_REPLY_ARRAY:
            guard let elements = reply.element else { return .array([]) }
            var values: [RESPValue] = []
            values.reserveCapacity(reply.elements)
            for index in 0..<reply.elements {
                if let element = elements[index] {
                    values.append(value(element.pointee))
                } else {
                    values.append(.null)
                }
            }
            return .array(values)
        default:
            return .null
        }
    }
}

/// Encodes commands with hiredis's binary-safe `redisFormatCommandArgv`.
enum HiredisEncoder {
    /// Appends the RESP encoding of `arguments` to `buffer`.
    static func encode(_ arguments: [[UInt8]], into buffer: inout ByteBuffer) throws(RedisWireError) {
        guard !arguments.isEmpty else { throw RedisWireError(.invalidArgument, "a command needs at least one argument") }
        // hiredis wants one pointer per argument: lay all arguments out in one scratch area
        // and point into it. The scratch areas are temporary allocations (on the stack when
        // small), so encoding costs no heap allocation of ours.
        var total = 0
        for argument in arguments { total += argument.count }
        let count = arguments.count
        let length: Int32 = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(total, 1)) { flat in
            withUnsafeTemporaryAllocation(of: Int.self, capacity: count) { lengths in
                withUnsafeTemporaryAllocation(of: UnsafePointer<CChar>?.self, capacity: count) { pointers in
                    let base = UnsafeMutableRawPointer(flat.baseAddress!)
                    var offset = 0
                    for (index, argument) in arguments.enumerated() {
                        argument.withUnsafeBytes { bytes in
                            if bytes.count > 0 { (base + offset).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }
                        }
                        lengths[index] = argument.count
                        pointers[index] = UnsafePointer((base + offset).assumingMemoryBound(to: CChar.self))
                        offset += argument.count
                    }
                    // The sds variant formats lengths with hiredis's own integer writer; the
                    // plain one goes through sprintf, a tenth of pipelined CPU time in profiles.
                    var target: sds?
                    let length = redisFormatSdsCommandArgv(&target, Int32(count), pointers.baseAddress, lengths.baseAddress)
                    if let target {
                        if length > 0 { buffer.writeBytes(UnsafeRawBufferPointer(start: target, count: Int(length))) }
                        redisFreeSdsCommand(target)
                    }
                    return length
                }
            }
        }
        if length < 0 { throw RedisWireError(.invalidArgument, "hiredis could not format the command (out of memory)") }
    }
}
