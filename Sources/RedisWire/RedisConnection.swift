import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// One long-lived connection to one Redis server.
///
/// SwiftNIO owns the socket; hiredis encodes and decodes. Many tasks may call
/// ``send(_:timeout:)`` at once: their commands pipeline on the one socket and each reply
/// goes to its own caller, in order. A command whose deadline passes fails with
/// ``RedisWireError/Code/timeout`` and the connection is dropped and re-dialled, so a late
/// reply can never be taken as the answer to a later command. While the server is down,
/// commands fail at once with ``RedisWireError/Code/unavailable`` and the connection re-dials
/// in the background with capped exponential backoff.
///
/// The connection dials lazily on first use, or when ``connect()`` is called.
public final class RedisConnection: @unchecked Sendable {
    // @unchecked: every stored `var` below is read and written only on `eventLoop`
    // (each entry point hops there first); the `let`s are immutable. `state`, read on every
    // command, skips the dynamic exclusivity check for that reason.

    /// The server this connection talks to.
    public let address: RedisServerAddress
    /// The event loop that owns the socket; Redlock fans out on it without extra hops.
    public let eventLoop: any EventLoop
    /// An executor that runs tasks on this connection's event loop (see ``EventLoopTaskExecutor``).
    public let taskExecutor: EventLoopTaskExecutor
    private let configuration: RedisConnectionConfiguration
    private let transport: any RedisTransport
    private let logger: Logger
    /// The TLS context, made once so that every re-dial reuses it; an error when the TLS
    /// configuration cannot be used (every dial then fails with it).
    private let tlsContext: Result<NIOSSLContext, RedisWireError>?

    private enum State {
        case idle
        case connecting(waiters: [Waiter])
        case connected(any Channel, RedisChannelHandler)
        case down(since: NIODeadline, lastError: RedisWireError)
        case closed
    }

    private struct Waiter {
        let encoded: ByteBuffer
        let deadline: NIODeadline
        let sink: ReplySink
        let script: RedisScriptCall?
        let replies: Int
    }

    @exclusivity(unchecked) private var state: State = .idle
    private var failedAttempts = 0
    private var redial: Scheduled<Void>?
    private var connectedWaiters: [EventLoopPromise<Void>] = []
    private var waiterExpiry: Scheduled<Void>?
    private var waiterExpiryDeadline = NIODeadline.distantFuture
    /// Until when commands fail because the admission gate holds the server out (see
    /// ``RedisAdmissionGate``); `.distantFuture` while its decision is pending.
    @exclusivity(unchecked) private var quarantinedUntil: NIODeadline?
    /// Why the server is held out, for the error commands fail with.
    private var heldOutReason = ""
    /// Counts successful dials, so that a gate's decision about an earlier one is ignored.
    private var generation = 0
    /// Commands that arrived while the gate's decision is pending: sent once it admits the
    /// server, failed if it holds it out.
    private var admissionWaiters: [Waiter] = []
    /// For a subscriber connection: where published messages go, and what runs after every
    /// (re)connect (subscriptions do not survive a new connection).
    private let onMessage: (@Sendable ([UInt8], [UInt8]) -> Void)?
    private let onConnected: (@Sendable () -> Void)?

    /// Creates a connection; it does not dial until first used or ``connect()`` is called.
    public convenience init(
        address: RedisServerAddress,
        configuration: RedisConnectionConfiguration = .init(),
        eventLoop: any EventLoop = MultiThreadedEventLoopGroup.singleton.any(),
        transport: any RedisTransport = PlainRedisTransport(),
        logger: Logger = Logger(label: "redis-wire")
    ) {
        self.init(address: address, configuration: configuration, eventLoop: eventLoop, transport: transport, logger: logger, subscriber: nil)
    }

    /// Creates a subscriber connection: every published message of the channels it
    /// subscribes to (with `SUBSCRIBE`, one channel per command) goes to `onMessage`, on the
    /// event loop, and `onConnected` runs on the loop after every (re)connect, to subscribe
    /// again. It must send nothing but `SUBSCRIBE`, `UNSUBSCRIBE` and `PING`.
    package convenience init(
        subscriberTo address: RedisServerAddress,
        configuration: RedisConnectionConfiguration,
        eventLoop: any EventLoop,
        transport: any RedisTransport = PlainRedisTransport(),
        logger: Logger,
        onMessage: @escaping @Sendable (_ channel: [UInt8], _ payload: [UInt8]) -> Void,
        onConnected: @escaping @Sendable () -> Void
    ) {
        var configuration = configuration
        configuration.preloadedScripts = []
        configuration.admissionGate = nil
        configuration.identifiesServer = false
        configuration.database = 0  // channels are global to the server; SELECT is pointless
        self.init(
            address: address,
            configuration: configuration,
            eventLoop: eventLoop,
            transport: transport,
            logger: logger,
            subscriber: (onMessage, onConnected)
        )
    }

    private init(
        address: RedisServerAddress,
        configuration: RedisConnectionConfiguration,
        eventLoop: any EventLoop,
        transport: any RedisTransport,
        logger: Logger,
        subscriber: (onMessage: @Sendable ([UInt8], [UInt8]) -> Void, onConnected: @Sendable () -> Void)?
    ) {
        self.onMessage = subscriber?.onMessage
        self.onConnected = subscriber?.onConnected
        self.address = address
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.taskExecutor = EventLoopTaskExecutor(eventLoop)
        self.transport = transport
        self.tlsContext = configuration.tls.map { tls in Result { () throws(RedisWireError) in try tls.makeContext() } }
        var logger = logger
        logger[metadataKey: "redis.address"] = "\(address)"
        self.logger = logger
    }

    // MARK: - Public API

    /// Sends one command and waits for its reply.
    ///
    /// - Parameters:
    ///   - arguments: the command and its arguments, each sent as one binary-safe bulk string.
    ///   - timeout: the command's deadline from now; the configuration's `commandTimeout` if nil.
    /// - Throws: ``RedisWireError``; an error reply is ``RedisWireError/Code/serverError``
    ///   with the server's message.
    public nonisolated(nonsending) func send(_ arguments: [[UInt8]], timeout: Duration? = nil) async throws(RedisWireError) -> RESPValue {
        let deadline = NIODeadline.now() + .nanoseconds((timeout ?? configuration.commandTimeout).nanoseconds)
        guard eventLoop.inEventLoop else {
            // Encode on the caller's thread, then hop once; no promise or future on this path.
            let command = try RedisCommand(arguments)
            return try await send(command, deadline: deadline)
        }
        // On the loop and connected, hiredis encodes straight into the batch being written:
        // no buffer of the command's own, and no copy of it.
        let result: Result<RESPValue, RedisWireError> = await withUnsafeContinuation { continuation in
            if case .connected(_, let handler) = state, !handler.isDropped, quarantinedUntil == nil {
                handler.send(encoding: arguments, deadline: deadline, sink: .continuation(continuation))
                return
            }
            do throws(RedisWireError) {
                let command = try RedisCommand(arguments)
                send(encoded: command.encoded, deadline: deadline, sink: .continuation(continuation), script: nil)
            } catch {
                continuation.resume(returning: .failure(error))
            }
        }
        return try result.get()
    }

    /// Sends a pre-encoded command and waits for its reply.
    public nonisolated(nonsending) func send(_ command: RedisCommand, deadline: NIODeadline) async throws(RedisWireError) -> RESPValue {
        try await sendAndWait(command.encoded, deadline: deadline, script: nil, replies: command.replies)
    }

    /// Queues `encoded` on the event loop (directly when already there) and waits for its
    /// reply: one hop in, and the reply resumes the caller's continuation itself, with no
    /// promise, future or closure in between.
    private nonisolated(nonsending) func sendAndWait(
        _ encoded: ByteBuffer,
        deadline: NIODeadline,
        script: RedisScriptCall?,
        replies: Int = 1
    ) async throws(RedisWireError) -> RESPValue {
        let result: Result<RESPValue, RedisWireError> = await withUnsafeContinuation { continuation in
            if eventLoop.inEventLoop {
                send(encoded: encoded, deadline: deadline, sink: .continuation(continuation), script: script, replies: replies)
            } else {
                eventLoop.execute {
                    self.send(
                        encoded: encoded,
                        deadline: deadline,
                        sink: .continuation(continuation),
                        script: script,
                        replies: replies
                    )
                }
            }
        }
        return try result.get()
    }

    /// Sends one command given as text arguments (UTF-8).
    public nonisolated(nonsending) func send(_ arguments: String..., timeout: Duration? = nil) async throws(RedisWireError) -> RESPValue {
        try await send(arguments.map { Array($0.utf8) }, timeout: timeout)
    }

    /// Runs a Lua script: with `EVALSHA` once this connection knows the server has it cached
    /// (preloaded on connect, or run once), with `EVAL` until then.
    ///
    /// Ordering: commands run in the order they were sent, scripts included. A script cache
    /// flushed under a live connection (`SCRIPT FLUSH`) makes the `EVALSHA` answer `NOSCRIPT`;
    /// no `EVAL` is re-sent behind the commands that followed it: the call fails with
    /// ``RedisWireError/Code/connectionClosed`` and the connection starts over.
    public nonisolated(nonsending) func evaluate(
        _ script: RedisScript,
        keys: [[UInt8]],
        arguments: [[UInt8]],
        timeout: Duration? = nil
    ) async throws(RedisWireError) -> RESPValue {
        let deadline = NIODeadline.now() + .nanoseconds((timeout ?? configuration.commandTimeout).nanoseconds)
        let call = try RedisScriptCall(script, keys: keys, arguments: arguments)
        return try await sendAndWait(call.evalsha.encoded, deadline: deadline, script: call)
    }

    /// Dials now (if not connected) and waits until the connection is usable.
    public func connect() async throws(RedisWireError) {
        let future: EventLoopFuture<Void> = eventLoop.flatSubmit {
            switch self.state {
            case .connected: return self.eventLoop.makeSucceededVoidFuture()
            case .closed: return self.eventLoop.makeFailedFuture(RedisWireError(.closed, "connection was closed"))
            case .down:
                // The caller asked for a dial: do it now rather than wait for the backoff.
                self.redial?.cancel()
                self.redial = nil
                self.dial()
            case .idle:
                self.dial()
            case .connecting:
                break
            }
            let promise = self.eventLoop.makePromise(of: Void.self)
            self.connectedWaiters.append(promise)
            return promise.futureResult
        }
        do {
            try await future.get()
        } catch {
            throw Self.wireError(error)
        }
    }

    /// Whether the connection is currently usable (connected and not held out after a
    /// restart), as seen on its event loop.
    public var isConnected: Bool {
        get async {
            (try? await eventLoop.submit {
                if let until = self.quarantinedUntil, NIODeadline.now() < until { return false }
                if case .connected = self.state { return true }
                return false
            }.get()) ?? false
        }
    }

    /// Whether the connection waits for its admission gate's decision about the server it
    /// reached (see ``RedisAdmissionGate``).
    package var isAwaitingAdmission: Bool {
        get async {
            (try? await eventLoop.submit { self.quarantinedUntil == .distantFuture }.get()) ?? false
        }
    }

    /// Closes the connection and stops re-dialling. Commands in flight fail with
    /// ``RedisWireError/Code/closed`` or ``RedisWireError/Code/connectionClosed``.
    public func close() async {
        let future: EventLoopFuture<Void> = eventLoop.flatSubmit {
            let previous = self.state
            self.state = .closed
            self.redial?.cancel()
            self.redial = nil
            let closed = RedisWireError(.closed, "connection was closed")
            self.failAdmissionWaiters(closed)
            for promise in self.connectedWaiters { promise.fail(closed) }
            self.connectedWaiters = []
            switch previous {
            case .connected(let channel, _):
                return channel.close().recover { _ in }
            case .connecting(let waiters):
                for waiter in waiters { waiter.sink.deliver(.failure(closed)) }
                return self.eventLoop.makeSucceededVoidFuture()
            default:
                return self.eventLoop.makeSucceededVoidFuture()
            }
        }
        try? await future.get()
    }

    // MARK: - On the event loop (used by Redlock's fan-out without extra hops)

    /// Sends a pre-encoded command; must be called on ``eventLoop``. `completion` runs on it.
    /// This is the cheapest way to send: no promise, no future, no encoding.
    package func send(_ command: RedisCommand, deadline: NIODeadline, completion: @escaping @Sendable (Result<RESPValue, RedisWireError>) -> Void) {
        eventLoop.preconditionInEventLoop()
        send(
            encoded: command.encoded,
            deadline: deadline,
            sink: .closure(completion),
            script: nil,
            replies: command.replies
        )
    }

    /// Sends a pre-encoded command whose reply goes to `receiver` with `tag`; must be called on
    /// ``eventLoop``, and the receiver is called there. Costs no allocation per command.
    package func send(_ command: RedisCommand, deadline: NIODeadline, receiver: any RedisReplyReceiver, tag: Int) {
        eventLoop.preconditionInEventLoop()
        send(
            encoded: command.encoded,
            deadline: deadline,
            sink: .receiver(receiver, tag: tag),
            script: nil,
            replies: command.replies
        )
    }

    /// Runs a pre-encoded script call (see ``evaluate(_:keys:arguments:timeout:)``), with its reply
    /// going to `receiver` with `tag`; must be called on ``eventLoop``.
    package func evaluate(_ call: RedisScriptCall, deadline: NIODeadline, receiver: any RedisReplyReceiver, tag: Int) {
        eventLoop.preconditionInEventLoop()
        send(encoded: call.evalsha.encoded, deadline: deadline, sink: .receiver(receiver, tag: tag), script: call)
    }

    private func send(encoded: ByteBuffer, deadline: NIODeadline, sink: ReplySink, script: RedisScriptCall?, replies: Int = 1) {
        if let until = quarantinedUntil, case .connected = state {
            if until == .distantFuture {
                admissionWaiters.append(Waiter(encoded: encoded, deadline: deadline, sink: sink, script: script, replies: replies))
                scheduleWaiterExpiry(at: deadline)
                return
            }
            guard NIODeadline.now() >= until else {
                sink.deliver(.failure(heldOutError(until)))
                return
            }
            quarantinedUntil = nil
        }
        switch state {
        case .connected(_, let handler) where handler.isDropped:
            // Dropped but not yet closed (its close callback has not run): re-dial now rather
            // than hand the command to a connection that can only fail it.
            state = .idle
            dial()
            send(encoded: encoded, deadline: deadline, sink: sink, script: script, replies: replies)
        case .connected(_, let handler):
            handler.send(encoded, deadline: deadline, sink: sink, script: script, replies: replies)
        case .idle:
            dial()
            send(encoded: encoded, deadline: deadline, sink: sink, script: script, replies: replies)
        case .connecting(var waiters):
            state = .idle  // avoid a copy-on-write of the array while we append
            waiters.append(Waiter(encoded: encoded, deadline: deadline, sink: sink, script: script, replies: replies))
            state = .connecting(waiters: waiters)
            scheduleWaiterExpiry(at: deadline)
        case .down(_, let error):
            sink.deliver(.failure(RedisWireError(.unavailable, "server is down, re-dialling in the background: \(error.message)")))
        case .closed:
            sink.deliver(.failure(RedisWireError(.closed, "connection was closed")))
        }
    }

    /// One timer for every command waiting on a dial, at the earliest deadline (not one each).
    private func scheduleWaiterExpiry(at deadline: NIODeadline) {
        guard deadline < waiterExpiryDeadline else { return }
        waiterExpiry?.cancel()
        waiterExpiryDeadline = deadline
        waiterExpiry = eventLoop.scheduleTask(deadline: deadline) { [self] in
            self.waiterExpiry = nil
            self.waiterExpiryDeadline = .distantFuture
            self.expireWaiters()
        }
    }

    private func expireWaiters() {
        let now = NIODeadline.now()
        // Lists first: a completion may send again on this connection, and that command must
        // join the waiters rather than be overwritten.
        let (keptForAdmission, expiredForAdmission) = Self.partition(admissionWaiters, at: now)
        admissionWaiters = keptForAdmission
        var (keptConnecting, expiredConnecting): ([Waiter], [Waiter]) = ([], [])
        if case .connecting(let waiters) = state {
            (keptConnecting, expiredConnecting) = Self.partition(waiters, at: now)
            state = .connecting(waiters: keptConnecting)
        }
        if let next = (keptForAdmission + keptConnecting).map(\.deadline).min() { scheduleWaiterExpiry(at: next) }
        Self.timeOut(expiredForAdmission, while: Self.identifying)
        Self.timeOut(expiredConnecting, while: "connecting")
    }

    /// `waiters` split into those whose deadline is still ahead at `now` and those past it.
    private static func partition(_ waiters: [Waiter], at now: NIODeadline) -> (kept: [Waiter], expired: [Waiter]) {
        var kept: [Waiter] = []
        var expired: [Waiter] = []
        for waiter in waiters {
            if waiter.deadline <= now { expired.append(waiter) } else { kept.append(waiter) }
        }
        return (kept, expired)
    }

    /// Fails `waiters` as timed out `while` what they waited for went on.
    private static func timeOut(_ waiters: [Waiter], while what: String) {
        for waiter in waiters { waiter.sink.deliver(.failure(RedisWireError(.timeout, "command deadline passed while \(what)"))) }
    }

    /// What admission waiters wait for, as the errors say.
    private static let identifying = "the server was identified"

    /// Sends `waiters` on `handler`, in order; those whose deadline passed `while` they waited
    /// fail as timed out.
    private func resend(_ waiters: [Waiter], on handler: RedisChannelHandler, while what: String) {
        let (kept, expired) = Self.partition(waiters, at: .now())
        Self.timeOut(expired, while: what)
        for waiter in kept {
            handler.send(waiter.encoded, deadline: waiter.deadline, sink: waiter.sink, script: waiter.script, replies: waiter.replies)
        }
    }

    private func dial() {
        switch state {
        case .idle, .down: break
        default: return
        }
        state = .connecting(waiters: [])
        let handler = RedisChannelHandler(
            logger: logger,
            healthTimeout: configuration.healthTimeout,
            maximumInFlight: configuration.maximumInFlight,
            onMessage: onMessage
        )
        let connectTimeout = configuration.connectTimeout
        let setupDeadline = NIODeadline.now() + .nanoseconds(connectTimeout.nanoseconds)
        let address = self.address
        let tls = configuration.tls
        let addHandler: @Sendable (any Channel) throws -> Void = { try $0.pipeline.syncOperations.addHandler(handler) }
        let connecting: EventLoopFuture<any Channel>
        switch (tls, tlsContext) {
        case (let tls?, .success(let context)?):
            // Over TLS the dial completes only once the handshake is over, so that nothing is
            // sent before it and its failure is reported as such rather than as a failed command.
            connecting = tls.connect(
                to: address,
                transport: transport,
                on: eventLoop,
                context: context,
                timeout: connectTimeout,
                deadline: setupDeadline,
                addingAfter: addHandler
            )
        case (_, .failure(let error)?):
            didFailToConnect(error)
            return
        default:
            connecting = transport.connect(to: address, on: eventLoop, timeout: connectTimeout) { channel in
                channel.eventLoop.makeCompletedFuture { try addHandler(channel) }
            }
        }
        connecting.flatMap { channel in
            self.handshake(handler: handler, deadline: setupDeadline)
                .flatMap { self.identifyServer(handler: handler) }
                .map { (channel, $0) }
                .flatMapErrorThrowing { error in
                    channel.close(promise: nil)
                    throw error
                }
        }
        .whenComplete { result in
            switch result {
            case .success(let (channel, identity)): self.didConnect(channel, handler: handler, identity: identity)
            case .failure(let error):
                let wire = Self.wireError(error)
                guard wire.tlsFailure == .untrustedCertificate, let tls else {
                    self.didFailToConnect(wire)
                    return
                }
                // The TLS library says only "verify failed": look at the certificate to tell
                // an expired one from an unknown CA.
                tls.diagnoseUntrustedCertificate(at: address, transport: self.transport, on: self.eventLoop, timeout: connectTimeout)
                    .whenComplete { diagnosis in
                        guard case .success(let failure?) = diagnosis else { return self.didFailToConnect(wire) }
                        self.didFailToConnect(RedisWireError(.tlsHandshakeFailed, failure.description, underlying: failure))
                    }
            }
        }
    }

    private func handshake(handler: RedisChannelHandler, deadline: NIODeadline) -> EventLoopFuture<Void> {
        var commands: [[[UInt8]]] = []
        if let auth = configuration.authentication {
            if let user = auth.username {
                commands.append(["AUTH", user, auth.password].map { Array($0.utf8) })
            } else {
                commands.append(["AUTH", auth.password].map { Array($0.utf8) })
            }
        }
        if configuration.database != 0 {
            commands.append(["SELECT", String(configuration.database)].map { Array($0.utf8) })
        }
        if commands.isEmpty {
            // One round trip before callers are let in. A proxy or balancer that accepts the
            // connection and then drops it (its server is down) is then a failed dial, with
            // backoff, not a connect followed by an immediate re-dial, hundreds a second
            // (and for a subscriber, each connect wakes every waiter). And a server that
            // refuses our client certificate after the TLS 1.3 handshake says so now.
            commands.append([Array("PING".utf8)])
        }
        let required = commands.map { command in
            setUpCommand(command, handler: handler, deadline: deadline).flatMapErrorThrowing { error in
                // Say which step failed; the arguments (a password) are never part of it.
                let wire = Self.wireError(error)
                guard wire.code == .serverError else { throw wire }
                throw RedisWireError(.serverError, "\(String(decoding: command[0], as: UTF8.self)) refused: \(wire.message)", underlying: wire)
            }
        }
        // Best effort: a user without SCRIPT LOAD (an ACL) still connects, and sends each
        // script's source once, with EVAL, instead.
        let preloads = configuration.preloadedScripts.map { script in
            setUpCommand([Array("SCRIPT".utf8), Array("LOAD".utf8), script.sourceBytes], handler: handler, deadline: deadline)
                .map { _ in handler.markCached(script.id) }
                .recover { error in self.logger.debug("could not preload a script", metadata: ["error": "\(error)"]) }
        }
        return EventLoopFuture.andAllSucceed(required, on: eventLoop).and(EventLoopFuture.andAllSucceed(preloads, on: eventLoop)).map { _ in () }
    }

    /// Sends one command of the connection's set-up on `handler`, before the connection is
    /// handed to callers.
    private func setUpCommand(_ arguments: [[UInt8]], handler: RedisChannelHandler, deadline: NIODeadline) -> EventLoopFuture<RESPValue> {
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        try? HiredisEncoder.encode(arguments, into: &buffer)
        let promise = eventLoop.makePromise(of: RESPValue.self)
        handler.send(buffer, deadline: deadline, promise: promise)
        return promise.futureResult
    }

    /// Reads `INFO` (with a deadline of its own: the connect's may be spent by a crowded
    /// reconnect) and refuses a server that cannot be a master here. With an admission gate it
    /// fails closed: a server that refuses `INFO`, does not answer it in time or names no run
    /// id cannot be told from one that lost its data, so the dial fails.
    private func identifyServer(handler: RedisChannelHandler) -> EventLoopFuture<ServerIdentity?> {
        guard configuration.identifiesServer || configuration.admissionGate != nil else { return eventLoop.makeSucceededFuture(nil) }
        let gated = configuration.admissionGate?.requiresIdentity == true
        let deadline = NIODeadline.now() + .nanoseconds(configuration.connectTimeout.nanoseconds)
        return setUpCommand([Array("INFO".utf8)], handler: handler, deadline: deadline).flatMapThrowing { reply -> ServerIdentity? in
            guard let identity = ServerIdentity(info: reply.string ?? "") else {
                guard gated else { return nil }
                throw RedisWireError(
                    .unidentified,
                    "INFO names no run_id or version: a restart that lost this server's data could not be detected, so it does not vote"
                )
            }
            if let reason = identity.unsupportedReason { throw RedisWireError(.unsupportedServer, reason) }
            return identity
        }.flatMapErrorThrowing { error -> ServerIdentity? in
            let wire = Self.wireError(error)
            guard wire.code != .unsupportedServer, wire.code != .unidentified else { throw wire }
            guard gated else {
                self.logger.debug("INFO unavailable; the server's version is not checked", metadata: ["error": "\(wire.message)"])
                return nil
            }
            let why = wire.code == .serverError ? "INFO refused (\(wire.message))" : "INFO not answered in time (\(wire.message))"
            throw RedisWireError(
                .unidentified,
                "\(why): a restart that lost this server's data could not be detected, so it does not vote; allow INFO for this user",
                underlying: wire
            )
        }
    }

    /// The error a command fails with while the server is held out.
    private func heldOutError(_ until: NIODeadline) -> RedisWireError {
        guard until != .distantFuture else { return RedisWireError(.heldOut, "held out of use while it is identified") }
        let milliseconds = max((until - .now()).nanoseconds / 1_000_000, 0)
        var error = RedisWireError(.heldOut, "held out of use for \(milliseconds) ms more: \(heldOutReason)")
        error.heldOutFor = .milliseconds(milliseconds)
        return error
    }

    /// Lets commands through (the gate decided the server may vote). Must be called on the loop.
    package func admit(generation: Int) {
        eventLoop.preconditionInEventLoop()
        guard generation == self.generation else { return }
        quarantinedUntil = nil
        let waiters = admissionWaiters
        admissionWaiters = []
        guard case .connected(_, let handler) = state else {
            for waiter in waiters { waiter.sink.deliver(.failure(Self.closedWhileIdentified)) }
            return
        }
        resend(waiters, on: handler, while: Self.identifying)
    }

    private static let closedWhileIdentified = RedisWireError(.unavailable, "the connection closed while \(identifying)")

    /// Fails the commands waiting for the gate's decision.
    private func failAdmissionWaiters(_ error: RedisWireError) {
        let waiters = admissionWaiters
        admissionWaiters = []
        for waiter in waiters { waiter.sink.deliver(.failure(error)) }
    }

    /// Keeps failing commands with ``RedisWireError/Code/heldOut`` until `until`, for `reason`.
    /// Must be called on the loop.
    package func holdOut(until: NIODeadline, reason: String, generation: Int) {
        eventLoop.preconditionInEventLoop()
        guard generation == self.generation else { return }
        quarantinedUntil = until
        heldOutReason = reason
        failAdmissionWaiters(heldOutError(until))
    }

    /// Sends a command to the server even while it is held out: the gate's own questions and
    /// markers. Fails with ``RedisWireError/Code/unavailable`` when not connected.
    package func sendWhileHeldOut(_ arguments: [[UInt8]], timeout: Duration) async throws(RedisWireError) -> RESPValue {
        let command = try RedisCommand(arguments)
        let deadline = NIODeadline.now() + .nanoseconds(timeout.nanoseconds)
        let result: Result<RESPValue, RedisWireError> = await withUnsafeContinuation { continuation in
            eventLoop.execute {
                guard case .connected(_, let handler) = self.state, !handler.isDropped else {
                    continuation.resume(returning: .failure(RedisWireError(.unavailable, "not connected")))
                    return
                }
                handler.send(command.encoded, deadline: deadline, sink: .continuation(continuation), script: nil, replies: command.replies)
            }
        }
        return try result.get()
    }

    private func didConnect(_ channel: any Channel, handler: RedisChannelHandler, identity: ServerIdentity?) {
        guard case .connecting(let waiters) = state else {
            channel.close(promise: nil)  // closed while dialling
            return
        }
        generation += 1
        let gate = configuration.admissionGate
        if gate != nil, identity != nil { quarantinedUntil = .distantFuture }
        if failedAttempts > 0 {
            logger.info("reconnected", metadata: ["redis.failed_attempts": "\(failedAttempts)"])
        } else {
            logger.debug("connected")
        }
        failedAttempts = 0
        state = .connected(channel, handler)
        if quarantinedUntil == .distantFuture {
            admissionWaiters += waiters
            if let first = waiters.map(\.deadline).min() { scheduleWaiterExpiry(at: first) }
        } else {
            resend(waiters, on: handler, while: "connecting")
        }
        for promise in connectedWaiters { promise.succeed() }
        connectedWaiters = []
        channel.closeFuture.whenComplete { _ in self.channelClosed(channel) }
        onConnected?()
        if let gate, let identity { gate.identified(identity, connection: self, generation: generation) }
    }

    private func channelClosed(_ channel: any Channel) {
        guard case .connected(let current, let handler) = state, current === channel else { return }
        failAdmissionWaiters(Self.closedWhileIdentified)
        guard handler.droppedAsSilent else {
            logger.debug("connection closed, re-dialling")
            state = .idle
            dial()
            return
        }
        // A silent server (paused, black-holed): back off like a failed dial rather than
        // re-dial in a storm.
        failedAttempts += 1
        state = .down(since: .now(), lastError: RedisWireError(.timeout, "the server stopped answering"))
        redial = eventLoop.scheduleTask(in: backoff(attempt: failedAttempts)) { [self] in
            self.redial = nil
            if case .down = self.state { self.dial() }
        }
    }

    private func didFailToConnect(_ error: RedisWireError) {
        guard case .connecting(let waiters) = state else { return }
        let unavailable = RedisWireError(.unavailable, "cannot connect: \(error.message)", underlying: error)
        if failedAttempts == 0 {
            logger.warning("server unreachable, re-dialling in the background", metadata: ["error": "\(error.message)"])
        }
        configuration.admissionGate?.unreachable(self, error: error)
        failedAttempts += 1
        // Down before any completion runs: a completion that sends again on this connection
        // (a fan-out releasing after a failed acquisition does) must fail fast, not be queued
        // on a dial that is over and then dropped.
        state = .down(since: .now(), lastError: error)
        let delay = backoff(attempt: failedAttempts)
        redial = eventLoop.scheduleTask(in: delay) { [self] in
            self.redial = nil
            if case .down = self.state { self.dial() }
        }
        let promises = connectedWaiters
        connectedWaiters = []
        for waiter in waiters { waiter.sink.deliver(.failure(unavailable)) }
        for promise in promises { promise.fail(unavailable) }
    }

    private func backoff(attempt: Int) -> TimeAmount {
        let initial = max(configuration.reconnect.initialDelay.nanoseconds, 1_000_000)
        let maximum = max(configuration.reconnect.maximumDelay.nanoseconds, initial)
        let shift = min(attempt - 1, 30)
        let (scaled, overflow) = initial.multipliedReportingOverflow(by: Int64(1) << shift)
        let base = overflow ? maximum : min(scaled, maximum)
        // Up to 20% jitter so that many clients do not re-dial in lockstep.
        let jitter = Int64.random(in: 0...(base / 5))
        return .nanoseconds(base - jitter)
    }

    static func wireError(_ error: any Error) -> RedisWireError {
        if let wire = error as? RedisWireError { return wire }
        if error is ChannelError || error is IOError {
            return RedisWireError(.unavailable, "\(error)")
        }
        return RedisWireError(.connectionClosed, "\(error)")
    }
}
