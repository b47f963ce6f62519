import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Redlock
import ServiceLifecycle
import Synchronization

/// The `/v1/api/lock/...` routes: acquire (POST), release (DELETE), extend (PATCH), status
/// (GET); and a semaphore's, `/v1/api/semaphore/key/{name}` (POST takes a permit) and
/// `/v1/api/semaphore/key/{name}/{permit}` (DELETE, PATCH and GET, as for a lock).
struct LockController: Sendable {
    let groups: MasterGroups
    let configuration: LocklockServerConfiguration
    let limiter: RateLimiter
    let waiters = WaiterCounts()
    /// Identities the shared rate limit refuses, and until when (see ``DenialCache``).
    let denials = DenialCache()
    /// Wrong secrets per caller and lock (see ``SecretGuessLimiter``).
    let secretGuesses = SecretGuessLimiter()

    func register(on router: Router<LocklockRequestContext>) {
        for kind in ["uuid", "key"] {
            let path = RouterPath("/v1/api/lock/\(kind)/:name")
            router.post(path) { request, context in try await self.handle(.acquire, kind: kind, request, context) }
            router.delete(path) { request, context in try await self.handle(.release, kind: kind, request, context) }
            router.patch(path) { request, context in try await self.handle(.extend, kind: kind, request, context) }
            router.get(path) { request, context in try await self.handle(.status, kind: kind, request, context) }
        }
        router.post("/v1/api/semaphore/key/:name") { request, context in try await self.handle(.acquirePermit, kind: "key", request, context) }
        let permit = RouterPath("/v1/api/semaphore/key/:name/:permit")
        router.delete(permit) { request, context in try await self.handle(.release, kind: "permit", request, context) }
        router.patch(permit) { request, context in try await self.handle(.extend, kind: "permit", request, context) }
        router.get(permit) { request, context in try await self.handle(.status, kind: "permit", request, context) }
    }

    enum Operation { case acquire, acquirePermit, release, extend, status }

    /// Who is calling, after authentication and plan checks.
    struct Caller {
        var tenant: Tenant?
        var redlock: Redlock
    }

    func handle(_ operation: Operation, kind: String, _ request: Request, _ context: LocklockRequestContext) async throws -> Response {
        var context = context
        context.clientAddress = ForwardedClient.address(
            peer: context.remoteAddress,
            headers: request.headers,
            trusted: configuration.trustedProxies,
            header: configuration.forwardedHeader
        )
        let raw = try context.parameters.require("name")
        guard var name = kind == "uuid" ? LockName.parseUUID(raw) : LockName.parseKey(raw) else {
            throw Problem.badRequest(kind == "uuid" ? "not a canonical UUID" : "lock names match ^[A-Za-z0-9._~:-]{1,200}$ and contain no '..'")
        }
        if kind == "permit" {
            guard let index = LockName.parsePermit(try context.parameters.require("permit")) else {
                throw Problem.badRequest("a permit is a number from 0 to \(Semaphore.maximumPermits - 1)")
            }
            name = .permit(raw, index: index)
        }
        let caller: Caller
        do {
            caller = try authorize(request, context: context, name: name)
        } catch let problem as Problem where problem.status == .unauthorized {
            // Guessing keys costs the guesser's own (anonymous) rate.
            throw problem.adding(try await throttle(nil, context: context))
        }
        let rateHeaders = try await throttle(caller.tenant, context: context)
        do {
            var response = try await handle(operation, name: name, caller: caller, request, context: context)
            for field in rateHeaders { response.headers.append(field) }
            return response
        } catch let problem as Problem {
            // A counted request says how much is left, whatever its outcome.
            throw problem.adding(rateHeaders)
        }
    }

    private func handle(
        _ operation: Operation,
        name: LockName,
        caller: Caller,
        _ request: Request,
        context: LocklockRequestContext
    ) async throws -> Response {
        var body = LockRequestBody()
        var storedData: [UInt8]?
        if operation != .status {
            body = try await LockRequestDecoder.lockBody(of: request, allowsData: caller.tenant?.plan == .pro)
            storedData = try body.validate(
                maximumExpiresIn: maximumExpiresIn(for: caller.tenant),
                maximumWait: configuration.maximumWait,
                allowData: caller.tenant?.plan == .pro
            )
            try body.validate(permitsExpected: operation == .acquirePermit)
        }
        let resource = name.resource(tenant: caller.tenant?.name)
        let secret = body.secret ?? request.headers[.lockSecret]
        if let secret { try LockRequestBody.validate(secret: secret) }
        let scope = name.secretScope.resource(tenant: caller.tenant?.name)
        let owner = secret.map { StoredLockValue.owner(resource: scope, secret: $0, key: configuration.secretKey) }
        // A caller that got too many secrets wrong for this lock waits before the next is
        // even compared.
        let guesser = identity(of: caller.tenant, context: context) + "\u{0}" + resource
        if operation != .status, let left = secretGuesses.refusal(for: guesser) {
            throw Problem.tooManyRequests("too many wrong secrets for this lock; try again later", retryAfter: left.secondsRoundedUp)
        }
        do {
            return try await perform(
                operation,
                name: name,
                resource: resource,
                caller: caller,
                body: body,
                owner: owner,
                storedData: storedData,
                request,
                context: context
            )
        } catch let problem as Problem where problem.revealsAWrongSecret {
            secretGuesses.recordFailure(guesser)
            throw problem
        }
    }

    /// Runs one authenticated, validated operation.
    private func perform(
        _ operation: Operation,
        name: LockName,
        resource: String,
        caller: Caller,
        body: LockRequestBody,
        owner: [UInt8]?,
        storedData: [UInt8]?,
        _ request: Request,
        context: LocklockRequestContext
    ) async throws -> Response {
        switch operation {
        case .acquire, .acquirePermit:
            if caller.tenant == nil, configuration.anonymousNamesPerRetention > 0 {
                let quota = AnonymousNameQuota(master: IdentityMaster(redlock: groups.primary, keyPrefix: "locklock:names:"))
                if let wait = await quota.admit(
                    resource,
                    for: identity(of: nil, context: context),
                    quota: configuration.anonymousNamesPerRetention,
                    window: groups.primary.configuration.fencingCounterRetention
                ) {
                    throw Problem.tooManyRequests(
                        "this address has used \(configuration.anonymousNamesPerRetention) lock names lately; use an API key, or reuse a name",
                        retryAfter: wait.secondsRoundedUp
                    )
                }
            }
            let post = Post(
                name: name,
                resource: resource,
                caller: caller,
                body: body,
                owner: owner,
                // Without expires_in: the contract's 30 days, or the caller's maximum if lower.
                ttl: .milliseconds(Int64((body.expiresIn ?? min(2_592_000, maximumExpiresIn(for: caller.tenant))) * 1000)),
                value: StoredLockValue.make(owner: owner, data: storedData, tenant: caller.tenant?.name),
                context: context
            )
            return try await (operation == .acquire ? acquire(post) : acquirePermit(post)).response(from: request, context: context)
        case .release:
            return try await release(name, resource, caller: caller, owner: owner, ifMatch: try Self.ifMatch(request))
                .response(from: request, context: context)
        case .extend:
            return try await extend(name, resource, caller: caller, body: body, owner: owner, ifMatch: try Self.ifMatch(request))
                .response(from: request, context: context)
        case .status:
            if let watch = try Self.watchQuery(request, maximumWait: configuration.maximumWait) {
                return try await self.watch(name, resource, caller: caller, query: watch, context: context).response(from: request, context: context)
            }
            return try await status(name, resource, caller: caller).response(from: request, context: context)
        }
    }

    // MARK: Operations

    /// A POST that acquires, authenticated and validated.
    struct Post {
        var name: LockName
        var resource: String
        var caller: Caller
        var body: LockRequestBody
        var owner: [UInt8]?
        var ttl: Duration
        /// The value stored on the masters (owner, data, tenant).
        var value: [UInt8]
        var context: LocklockRequestContext
        /// How long it may wait, in seconds.
        var wait: Double { body.wait ?? 0 }
    }

    /// Runs `operation`, which waits at most `seconds`, as one of the caller's waiters (a POST
    /// that waits, a watch) until it ends or the client leaves; 429 with `retryAfter` when the
    /// caller has too many. The waiters are counted where throttling is: on the masters,
    /// shared by every replica (unless throttling is local, or that master does not answer).
    func asWaiter<T: Sendable>(
        _ caller: Caller,
        _ context: LocklockRequestContext,
        waiting seconds: Double,
        retryAfter: Int,
        _ operation: @escaping @Sendable () async throws(RedlockError) -> T
    ) async throws -> Result<T, RedlockError> {
        let identity = identity(of: caller.tenant, context: context)
        let limit = waiterLimit(for: caller.tenant)
        if configuration.throttle == .shared {
            let shared = SharedWaiterCounts(master: IdentityMaster(redlock: groups.primary, keyPrefix: "locklock:waiters:"))
            // Its place lapses a little after the longest it may wait, should this replica die.
            let lease = Duration.milliseconds(Int64(seconds * 1000)) + .seconds(5)
            if let id = await shared.enter(identity, limit: limit, lease: lease) {
                guard !id.isEmpty else { throw Problem.tooManyWaiters(retryAfter: retryAfter) }
                let outcome = await untilClientLeaves(context, operation)
                await shared.leave(identity, id: id)
                return outcome
            }
        }
        guard waiters.enter(identity, limit: limit) else { throw Problem.tooManyWaiters(retryAfter: retryAfter) }
        defer { waiters.leave(identity) }
        return await untilClientLeaves(context, operation)
    }

    func acquire(_ post: Post) async throws -> LockResponse {
        let (name, resource, caller, body, owner, ttl, value, wait) = (
            post.name, post.resource, post.caller, post.body, post.owner, post.ttl, post.value, post.wait
        )
        var outcome = await Self.attempt { () async throws(RedlockError) -> Lock in
            try await caller.redlock.acquire(
                resource,
                ttl: ttl,
                value: value,
                retry: RedlockConfiguration.Retry.never,
                lockDelay: body.lockDelayDuration
            )
        }
        // The first attempt is made at once: a holder's own re-POST (the retry after a lost
        // 201) is answered without waiting, even with a wait.
        if case .failure(let error) = outcome, error.code == .lockHeld, wait > 0 {
            let state = try await inspect(resource, caller: caller)
            if let response = try ownLock(state, owner: owner, name: name, caller: caller) { return response }
            outcome = try await asWaiter(caller, post.context, waiting: wait, retryAfter: Self.seconds(state.timeToLive)) {
                () async throws(RedlockError) -> Lock in
                try await caller.redlock.acquire(
                    resource,
                    ttl: ttl,
                    value: value,
                    wait: .milliseconds(Int64(wait * 1000)),
                    // Only when no wake-up comes: the holder's remaining time is the fallback,
                    // and this backoff when the masters did not say it.
                    retry: .init(count: 0, delay: .milliseconds(50), jitter: .milliseconds(25), maximumDelay: .milliseconds(800)),
                    lockDelay: body.lockDelayDuration
                )
            }
        }
        let lock: Lock
        switch outcome {
        case .success(let acquired):
            lock = acquired
            guard post.context.clientIsConnected else {
                // Nobody is there to use or release it: give it back rather than leave it held.
                _ = try? await caller.redlock.release([resource], matching: .exact(value))
                throw Problem.clientGone
            }
        case .failure(let error) where error.code == .lockHeld:
            let state = try await inspect(resource, caller: caller)
            if let response = try ownLock(state, owner: owner, name: name, caller: caller) { return response }
            let conflict = Problem.conflict("the lock is held by another client", retryAfter: Self.seconds(state.timeToLive))
            // With a secret, against a holder that has one: a 409 where the right one gets 200.
            let guessed = owner != nil && state.holderValue.map(StoredLockValue.hasSecret) == true
            throw guessed ? conflict.revealingAWrongSecret : conflict
        case .failure(let error) where error.code == .cancelled:
            throw Problem.clientGone
        case .failure(let error):
            throw Self.problem(for: error)
        }
        return lockResponse(.created, name: name, remaining: lock.validity, hasSecret: owner != nil, token: lock.fencingToken, data: body.data)
    }

    /// Takes one permit of the semaphore `name` (at most `permits` holders at once): 201 with
    /// the permit's path and index, or 409 when every permit is held (after `wait`). A POST
    /// always takes a new permit: one whose 201 was lost is freed by its TTL.
    func acquirePermit(_ post: Post) async throws -> LockResponse {
        let (caller, body, ttl, value, wait) = (post.caller, post.body, post.ttl, post.value, post.wait)
        guard case .key(let key) = post.name, let permits = body.permits else { throw Problem.unprocessable("permits is required") }
        let semaphore = try Self.throwingProblem { () throws(RedlockError) in try caller.redlock.semaphore(post.resource, permits: permits) }
        var outcome = await Self.attempt { () async throws(RedlockError) -> Lock in
            try await semaphore.acquire(ttl: ttl, value: value, lockDelay: body.lockDelayDuration)
        }
        if case .failure(let error) = outcome, error.code == .lockHeld, wait > 0 {
            outcome = try await asWaiter(caller, post.context, waiting: wait, retryAfter: Self.seconds(error.retryAfter)) {
                () async throws(RedlockError) -> Lock in
                try await semaphore.acquire(ttl: ttl, value: value, wait: .milliseconds(Int64(wait * 1000)), lockDelay: body.lockDelayDuration)
            }
        }
        switch outcome {
        case .success(let permit):
            guard post.context.clientIsConnected, let index = semaphore.slotIndex(of: permit) else {
                _ = try? await caller.redlock.release(permit)
                throw Problem.clientGone
            }
            var response = lockResponse(
                .created,
                name: .permit(key, index: index),
                remaining: permit.validity,
                hasSecret: post.owner != nil,
                token: permit.fencingToken,
                data: body.data
            )
            response.permit = index
            return response
        case .failure(let error) where error.code == .lockHeld:
            throw Problem.conflict("all \(permits) permits are held", retryAfter: Self.seconds(error.retryAfter))
        case .failure(let error) where error.code == .cancelled:
            throw Problem.clientGone
        case .failure(let error):
            throw Self.problem(for: error)
        }
    }

    /// Runs `operation` (an acquisition that waits, or a watch) until it ends, the client has
    /// gone, or the server begins a graceful shutdown (both checked every 100 ms; the
    /// operation is then cancelled). A lock granted as the client left is still returned, for
    /// the caller to give back.
    func untilClientLeaves<T: Sendable>(
        _ context: LocklockRequestContext,
        _ operation: @escaping @Sendable () async throws(RedlockError) -> T
    ) async -> Result<T, RedlockError> {
        let draining = DrainFlag()
        let stop = OneShot()
        // Woken by the connection's close, not by polling it.
        context.connectionClosed.whenComplete { _ in stop.fire() }
        return await withGracefulShutdownHandler {
            await withTaskGroup(of: Result<T, RedlockError>?.self) { group in
                group.addTask { await Self.attempt(operation) }
                group.addTask {
                    await withTaskCancellationHandler {
                        await stop.wait()
                    } onCancel: {
                        stop.fire()
                    }
                    if !context.clientIsConnected { return .failure(RedlockError(.cancelled, "the client has gone")) }
                    if draining.isSet.load(ordering: .relaxed) { return .failure(RedlockError(.shutdown, "the server is shutting down")) }
                    return nil  // the operation ended first
                }
                var outcome: Result<T, RedlockError>?
                for await result in group {
                    guard let result else { continue }
                    if outcome == nil {
                        outcome = result
                        group.cancelAll()
                    } else if case .success = result {
                        outcome = result  // granted as the client left: the caller gives it back
                    }
                }
                return outcome ?? .failure(RedlockError(.cancelled, "the client has gone"))
            }
        } onGracefulShutdown: {
            draining.isSet.store(true, ordering: .relaxed)
            stop.fire()
        }
    }

    /// `body`'s value, or its error as a problem response.
    static func throwingProblem<T>(_ body: () throws(RedlockError) -> T) throws -> T {
        do {
            return try body()
        } catch {
            throw problem(for: error)
        }
    }

    static func attempt<T>(_ body: () async throws(RedlockError) -> T) async -> Result<T, RedlockError> {
        do {
            return .success(try await body())
        } catch {
            return .failure(error)
        }
    }

    /// The 200 for a POST by the holder itself (same secret), or nil when someone else holds it.
    func ownLock(_ state: LockState, owner: [UInt8]?, name: LockName, caller: Caller) throws -> LockResponse? {
        guard let owner, let holder = state.holderValue, StoredLockValue.isHeld(holder, by: owner), let remaining = state.remaining else {
            return nil
        }
        return lockResponse(
            .ok,
            name: name,
            remaining: remaining,
            hasSecret: true,
            token: state.fencingToken,
            data: StoredLockValue.data(in: holder, visibleTo: caller.tenant?.name).flatMap(JSONValue.init(decoding:))
        )
    }

    func release(_ name: LockName, _ resource: String, caller: Caller, owner: [UInt8]?, ifMatch: Int64?) async throws -> ReleaseResponse {
        let outcome: ReleaseOutcome
        do {
            outcome = try await caller.redlock.release([resource], matching: StoredLockValue.match(owner: owner), fencingToken: ifMatch)
        } catch {
            throw Self.problem(for: error)
        }
        if outcome == .released { return ReleaseResponse(lock: name.path) }
        throw try await notOurs(resource, caller: caller, owner: owner, ifMatch: ifMatch)
    }

    /// Why a release or extend matched nothing: 412 when our secret holds the lock under
    /// another fencing token than `If-Match` named (a later acquisition), 403 when someone
    /// else holds it (a wrong secret, or none for a lock taken with one), 404 when nobody does.
    func notOurs(_ resource: String, caller: Caller, owner: [UInt8]?, ifMatch: Int64?) async throws -> Problem {
        let state = try await inspect(resource, caller: caller)
        if let ifMatch, state.isHeld, let holder = state.holderValue, state.fencingToken != ifMatch,
            owner.map({ StoredLockValue.isHeld(holder, by: $0) }) ?? !StoredLockValue.hasSecret(holder)
        {
            return Problem(.preconditionFailed, "Precondition Failed", "the lock is held under another fencing token than If-Match names")
                .revealingAWrongSecret
        }
        if state.isHeld {
            return owner == nil
                ? Problem.forbidden("the lock was taken with a secret; send it") : Problem.forbidden("wrong secret").revealingAWrongSecret
        }
        return Problem.notFound("the lock is not held (free or expired)")
    }

    func extend(
        _ name: LockName,
        _ resource: String,
        caller: Caller,
        body: LockRequestBody,
        owner: [UInt8]?,
        ifMatch: Int64?
    ) async throws -> LockResponse {
        guard let expiresIn = body.expiresIn else { throw Problem.unprocessable("expires_in is required") }
        do {
            _ = try await caller.redlock.extend(
                [resource],
                matching: StoredLockValue.match(owner: owner),
                fencingToken: ifMatch,
                ttl: .milliseconds(Int64(expiresIn * 1000)),
                lockDelay: body.lockDelayDuration
            )
        } catch  where error.code == .lockLost {
            throw try await notOurs(resource, caller: caller, owner: owner, ifMatch: ifMatch)
        } catch {
            throw Self.problem(for: error)
        }
        return try await status(name, resource, caller: caller)
    }

    /// `GET ...?wait=SECONDS&index=TOKEN`: a blocking query (see `Redlock.watch`).
    struct WatchQuery {
        var wait: Double
        /// The fencing token the client saw held; nil when it saw the lock free.
        var index: Int64?
    }

    /// The watch parameters of a GET, or nil for a plain status request.
    static func watchQuery(_ request: Request, maximumWait: Double) throws -> WatchQuery? {
        let query = request.uri.queryParameters
        let rawIndex = query["index"].map(String.init)
        let rawWait = query["wait"].map(String.init)
        guard rawWait != nil || rawIndex != nil else { return nil }
        // An index without a wait asks without waiting: the state now.
        guard let wait = Double(rawWait ?? "0"), wait.isFinite else { throw Problem.badRequest("wait must be a number of seconds") }
        try LockRequestBody.validate(wait: wait, maximumWait: maximumWait)
        guard let rawIndex else { return WatchQuery(wait: wait, index: nil) }
        guard let index = Int64(rawIndex), index >= 0 else { throw Problem.badRequest("index must be a fencing token (a non-negative integer)") }
        return WatchQuery(wait: wait, index: index == 0 ? nil : index)
    }

    /// Answers once the lock's state differs from the one the client saw (`index`: the
    /// holder's fencing token; 0 or none: free), or at the timeout: 200 with the holder, or
    /// 404 when free. Counts as a waiter against the client's cap.
    func watch(_ name: LockName, _ resource: String, caller: Caller, query: WatchQuery, context: LocklockRequestContext) async throws -> LockResponse
    {
        let redlock = caller.redlock
        let outcome = try await asWaiter(caller, context, waiting: query.wait, retryAfter: 1) { () async throws(RedlockError) -> LockState in
            try await redlock.watch(resource, seenToken: query.index, timeout: .milliseconds(Int64(query.wait * 1000)))
        }
        switch outcome {
        case .success(let state): return try lockResponse(for: state, name: name, caller: caller)
        case .failure(let error) where error.code == .cancelled: throw Problem.clientGone
        case .failure(let error): throw Self.problem(for: error)
        }
    }

    func status(_ name: LockName, _ resource: String, caller: Caller) async throws -> LockResponse {
        try lockResponse(for: try await inspect(resource, caller: caller), name: name, caller: caller)
    }

    /// 200 with the holder, or 404 when the lock is free.
    func lockResponse(for state: LockState, name: LockName, caller: Caller) throws -> LockResponse {
        guard state.isHeld, let holder = state.holderValue, let remaining = state.remaining else {
            throw Problem.notFound("the lock is not held (free or expired)")
        }
        return lockResponse(
            .ok,
            name: name,
            remaining: remaining,
            hasSecret: StoredLockValue.hasSecret(holder),
            token: state.fencingToken,
            data: StoredLockValue.data(in: holder, visibleTo: caller.tenant?.name).flatMap(JSONValue.init(decoding:))
        )
    }

    func inspect(_ resource: String, caller: Caller) async throws -> LockState {
        do {
            return try await caller.redlock.inspect(resource)
        } catch {
            throw Self.problem(for: error)
        }
    }

    // MARK: Authentication, throttling, bodies

    func authorize(_ request: Request, context: LocklockRequestContext, name: LockName) throws -> Caller {
        var tenant: Tenant?
        if let authorization = request.headers[.authorization] {
            // The scheme is case-insensitive (RFC 9110 section 11.1).
            guard authorization.prefix(7).lowercased() == "bearer ",
                let found = configuration.tenants.authenticate(key: String(authorization.dropFirst(7)))
            else {
                throw Problem.unauthorized("invalid API key")
            }
            tenant = found
        }
        if let subdomain = subdomain(of: request) {
            guard let tenant else { throw Problem.unauthorized("\(subdomain) needs its tenant's API key") }
            guard tenant.name == subdomain else { throw Problem.forbidden("this key belongs to another tenant") }
            guard tenant.plan == .pro else { throw Problem.forbidden("custom subdomains need a Pro plan") }
        }
        switch name {
        case .uuid: break
        case .key, .permit:
            guard let tenant else { throw Problem.unauthorized("custom lock names need a Pro API key") }
            guard tenant.plan == .pro else { throw Problem.forbidden("custom lock names need a Pro plan") }
        }
        // UUIDs are one global namespace, so a UUID lock lives on the primary masters whoever
        // asks; only a tenant's own key locks live in its region.
        if case .uuid = name { return Caller(tenant: tenant, redlock: groups.primary) }
        return Caller(tenant: tenant, redlock: groups.redlock(for: tenant))
    }

    func subdomain(of request: Request) -> String? {
        guard let base = configuration.baseDomain?.lowercased(), let host = request.head.authority?.lowercased() else { return nil }
        var hostname = host.split(separator: ":").first.map(String.init) ?? host
        if hostname.hasSuffix(".") { hostname.removeLast() }  // a fully qualified name is the same host
        guard hostname.hasSuffix("." + base) else { return nil }
        let label = String(hostname.dropLast(base.count + 1))
        return label.isEmpty || label.contains(".") ? nil : label
    }

    /// Who is counted for throttling and waiter limits: the tenant, or the client address.
    func identity(of tenant: Tenant?, context: LocklockRequestContext) -> String {
        tenant.map { "t:" + $0.name } ?? RateLimiter.clientKey(for: context.clientAddress)
    }

    /// The largest `expires_in` for `tenant`, or for a caller without a key.
    func maximumExpiresIn(for tenant: Tenant?) -> Double {
        tenant == nil ? min(configuration.anonymousMaximumExpiresIn, configuration.maximumExpiresIn) : configuration.maximumExpiresIn
    }

    /// How many requests of `tenant` (or of an anonymous address) may wait at once.
    func waiterLimit(for tenant: Tenant?) -> Int {
        guard let tenant else { return configuration.anonymousWaiters }
        return tenant.plan == .pro ? configuration.proWaiters : configuration.developerWaiters
    }

    /// Takes a token from the tenant's bucket, or from the client address's without one.
    func throttle(_ tenant: Tenant?, context: LocklockRequestContext) async throws -> [HTTPField] {
        let rate: Int
        if let tenant {
            rate = tenant.plan == .pro ? configuration.proRate : configuration.developerRate
        } else {
            rate = configuration.anonymousRate
        }
        guard rate > 0 else { return [] }
        let key = identity(of: tenant, context: context)
        var shared: RateLimiter.Decision?
        if configuration.throttle == .shared {
            switch denials.verdict(for: key) {
            case .refused(let left):
                // The masters said so already: refused here, without asking them again.
                shared = RateLimiter.Decision(allowed: false, remaining: 0, retryAfter: max(1, Int(left.secondsRoundedUp)))
            case .ask:
                let answer = await SharedRateLimiter(master: IdentityMaster(redlock: groups.primary, keyPrefix: "locklock:throttle:")).check(
                    key,
                    rate: rate
                )
                shared = answer?.decision
                denials.settle(key, refusedFor: answer?.refusedFor)
            }
        }
        let decision = shared ?? limiter.check(key, rate: rate)
        let headers = [
            HTTPField(name: .rateLimitPolicy, value: "\(rate * 2);w=1"),
            HTTPField(name: .rateLimit, value: "limit=\(rate * 2), remaining=\(decision.remaining), reset=\(max(decision.retryAfter, 1))"),
        ]
        guard decision.allowed else {
            var fields = HTTPFields(headers)
            fields[.retryAfter] = String(decision.retryAfter)
            throw Problem(.tooManyRequests, "Too Many Requests", "rate limit exceeded", headers: fields)
        }
        return headers
    }

    // MARK: Responses

    func lockResponse(
        _ status: HTTPResponse.Status,
        name: LockName,
        remaining: Duration,
        hasSecret: Bool,
        token: Int64?,
        data: JSONValue?
    ) -> LockResponse {
        let seconds = max(0, remaining.seconds)
        return LockResponse(
            status: status,
            lock: name.path,
            expiresIn: (seconds * 100).rounded() / 100,
            expiresAt: Self.rfc3339(Date().addingTimeInterval(seconds)),
            hasSecret: hasSecret,
            fencingToken: token,
            data: data
        )
    }

    /// The fencing token an `If-Match` header names (`17` or the entity tag `"17"`), if any.
    static func ifMatch(_ request: Request) throws -> Int64? {
        guard let header = request.headers[.ifMatch] else { return nil }
        var text = Substring(header.trimmingCharacters(in: .whitespaces))
        if text.count >= 2, text.hasPrefix("\""), text.hasSuffix("\"") { text = text.dropFirst().dropLast() }
        guard let token = Int64(text), token > 0 else {
            throw Problem.badRequest("If-Match takes the lock's fencing token, as its ETag gives it")
        }
        return token
    }

    static func problem(for error: any Error) -> any Error {
        guard let error = error as? RedlockError else { return error }
        switch error.code {
        case .lockHeld: return Problem.conflict("the lock is held by another client", retryAfter: 1)
        case .invalidArgument: return Problem.unprocessable("invalid lock request")
        case .shutdown: return Problem.unavailable("this server is shutting down; retry (on another replica)")
        case .quorumUnreachable where error.retryAfter != nil:
            // Masters held out after a restart that may have lost data: back at a known time.
            let seconds = seconds(error.retryAfter)
            return Problem.unavailable(
                "too few lock servers vote: some are held out after a restart that may have lost data, until every lock they may "
                    + "have forgotten has expired; a quorum is back in about \(seconds) s",
                retryAfter: seconds
            )
        default: return Problem.unavailable("too few lock servers answered; try again")
        }
    }

    static func seconds(_ duration: Duration?) -> Int {
        duration?.secondsRoundedUp ?? 1
    }

    /// RFC 3339 in UTC with milliseconds, formatted directly (a date formatter per request
    /// showed up in profiles).
    static func rfc3339(_ date: Date) -> String {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        var seconds = time_t(milliseconds / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(milliseconds % 1000), 3))Z"
    }
}

/// How many waiting requests each identity has now.
final class WaiterCounts: Sendable {
    private let counts = Mutex<[String: Int]>([:])

    /// Counts one more waiter for `identity`, unless it already has `limit`.
    func enter(_ identity: String, limit: Int) -> Bool {
        counts.withLock { counts in
            let current = counts[identity, default: 0]
            guard current < limit else { return false }
            counts[identity] = current + 1
            return true
        }
    }

    /// Counts one waiter of `identity` less.
    func leave(_ identity: String) {
        counts.withLock { counts in
            let left = counts[identity, default: 1] - 1
            counts[identity] = left > 0 ? left : nil
        }
    }
}

/// Wakes its one waiter once, whichever of its causes fires first (and at once if one
/// already has).
final class OneShot: Sendable {
    private let state = Mutex<(fired: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))

    /// Returns once ``fire()`` has been called.
    func wait() async {
        await withCheckedContinuation { continuation in
            let fired = state.withLock { state -> Bool in
                if !state.fired { state.waiter = continuation }
                return state.fired
            }
            if fired { continuation.resume() }
        }
    }

    /// Wakes the waiter (now or when it comes).
    func fire() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.fired = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }
}

/// Set when the server begins a graceful shutdown, for the waiting requests to see.
final class DrainFlag: Sendable {
    let isSet = Atomic<Bool>(false)
}
