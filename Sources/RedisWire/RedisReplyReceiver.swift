/// An object that takes the replies of many commands, told apart by a tag.
///
/// Sending with a receiver instead of a closure costs no allocation per command: a fan-out to
/// N servers hands the same receiver to every connection, with the server's index as the tag.
package protocol RedisReplyReceiver: AnyObject, Sendable {
    /// Called exactly once per command sent with this receiver, on the connection's event loop.
    func receive(_ reply: Result<RESPValue, RedisWireError>, tag: Int)
}

/// Where one command's reply goes.
enum ReplySink {
    case closure(RedisChannelHandler.Completion)
    case receiver(any RedisReplyReceiver, tag: Int)
    /// An awaiting caller, resumed directly.
    case continuation(UnsafeContinuation<Result<RESPValue, RedisWireError>, Never>)
    /// A command whose caller has already been answered (it timed out): its late reply is
    /// read, to keep the replies in step, and dropped.
    case abandoned

    func deliver(_ reply: Result<RESPValue, RedisWireError>) {
        switch self {
        case .abandoned: break
        case .closure(let completion): completion(reply)
        case .receiver(let receiver, let tag): receiver.receive(reply, tag: tag)
        case .continuation(let continuation): continuation.resume(returning: reply)
        }
    }
}
