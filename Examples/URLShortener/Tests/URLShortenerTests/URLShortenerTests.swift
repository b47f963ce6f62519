import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
import URLShortener

@Suite("URL shortener: 50 identical requests at once", .serialized)
struct URLShortenerTests {
    let longURL = "https://example.com/a/very/long/path?campaign=locklock"

    @Test func withoutTheGuardOneLongURLGetsSeveralShortURLs() async throws {
        try await withShortener(mode: .none) { shortener in
            let report = try await fireParallelRequests(baseURL: shortener.baseURL, longURL: longURL, count: 50)
            let rows = try await shortener.database.all(longURL: longURL)
            // The race is real, so the guarded tests below can fail.
            #expect(rows.count > 1, "\(report)")
            #expect(report.distinctCodes.count == rows.count, "\(report)")
            #expect(report.statusCounts[201] == rows.count, "\(report)")
        }
    }

    @Test func rejectModeCreatesOneShortURLAndTheLosersGet409WithRetryAfter() async throws {
        try await withShortener(mode: .reject) { shortener in
            let report = try await fireParallelRequests(baseURL: shortener.baseURL, longURL: longURL, count: 50)
            let rows = try await shortener.database.all(longURL: longURL)
            #expect(rows.count == 1, "\(report)")
            #expect(report.statusCounts[201] == 1, "\(report)")
            #expect((report.statusCounts[409] ?? 0) > 0, "the losers were refused, not queued: \(report)")
            #expect(Set(report.statusCounts.keys).isSubset(of: [200, 201, 409]), "\(report)")
            #expect(report.distinctCodes == [rows[0].code], "\(report)")
            for reply in report.replies where reply.status == 409 {
                #expect(Int(reply.retryAfter ?? "") ?? 0 >= 1, "a 409 without a usable Retry-After")
            }
            // A retry after the winner finished gets the winner's code.
            let retry = try await fireParallelRequests(baseURL: shortener.baseURL, longURL: longURL, count: 1)
            #expect(retry.replies.map(\.status) == [200])
            #expect(retry.distinctCodes == [rows[0].code])
        }
    }

    @Test func waitModeCreatesOneShortURLAndEveryoneGetsTheWinnersAnswer() async throws {
        try await withShortener(mode: .wait) { shortener in
            let report = try await fireParallelRequests(baseURL: shortener.baseURL, longURL: longURL, count: 50)
            let rows = try await shortener.database.all(longURL: longURL)
            #expect(rows.count == 1, "\(report)")
            #expect(report.statusCounts == [201: 1, 200: 49], "\(report)")
            #expect(report.distinctCodes == [rows[0].code], "\(report)")
        }
    }

    @Test func oneIdempotencyKeyRunsTheRequestOnceAndReplaysItsAnswer() async throws {
        // No per-URL guard: only the Idempotency-Key middleware stands between the requests.
        try await withShortener(mode: .none) { shortener in
            let key = "order-7f3a9c"
            let report = try await fireParallelRequests(baseURL: shortener.baseURL, longURL: longURL, count: 50, idempotencyKey: key)
            let rows = try await shortener.database.all(longURL: longURL)
            #expect(rows.count == 1, "\(report)")
            #expect(report.replies.filter { $0.status == 201 && !$0.replayed }.count == 1, "\(report)")
            #expect(Set(report.statusCounts.keys).isSubset(of: [201, 409]), "\(report)")
            #expect((report.statusCounts[409] ?? 0) > 0, "the retries really overlapped: \(report)")
            #expect(report.distinctCodes == [rows[0].code], "\(report)")
            let retry = try await fireParallelRequests(baseURL: shortener.baseURL, longURL: longURL, count: 1, idempotencyKey: key)
            #expect(retry.replies.first?.status == 201)
            #expect(retry.replies.first?.replayed == true)
            #expect(retry.distinctCodes == [rows[0].code])
            // The same key for another URL is a client bug, not a retry.
            let misuse = try await fireParallelRequests(baseURL: shortener.baseURL, longURL: longURL + "&other", count: 1, idempotencyKey: key)
            #expect(misuse.replies.map(\.status) == [422])
        }
    }

    @Test func shortURLsRedirectAndBadInputIsRefused() async throws {
        try await withShortener(mode: .reject) { shortener in
            let created = try await shortener.request(.post, "/shorten", json: #"{"url":"\#(longURL)"}"#)
            #expect(created.status == .created)
            let reply = try JSONSerialization.jsonObject(with: Data(String(buffer: created.body).utf8)) as? [String: Any]
            let code = try #require(reply?["code"] as? String)
            let stored = try await shortener.database.find(code: code)
            #expect(stored?.longURL == longURL)
            for body in [#"{"url":"ftp://example.com/x"}"#, #"{"url":"not a url"}"#, #"{"nope":1}"#] {
                let refused = try await shortener.request(.post, "/shorten", json: body)
                #expect(refused.status == .badRequest, "\(body) -> \(refused.status)")
            }
            let missing = try await shortener.request(.get, "/s/doesnotexist")
            #expect(missing.status == .notFound)
        }
    }
}
