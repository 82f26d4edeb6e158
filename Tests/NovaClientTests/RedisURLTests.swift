import NovaClient
import Testing

@Suite struct RedisURLTests {
    @Test func defaults() throws {
        let url = try RedisURL("redis://localhost")
        #expect(url.endpoint == .tcp(host: "localhost", port: 6379))
        #expect(url.database == 0)
        #expect(url.password == nil && url.username == nil && url.tls == nil)
        #expect(url.protocolVersion == 3)
    }

    @Test func fullForm() throws {
        let url = try RedisURL("redis://app:p%40ss%3Aw0rd@cache.internal:6380/1?timeout=0.25&name=crm&protocol=2")
        #expect(url.endpoint == .tcp(host: "cache.internal", port: 6380))
        #expect(url.username == "app")
        #expect(url.password == "p@ss:w0rd")
        #expect(url.database == 1)
        #expect(url.commandTimeout == .milliseconds(250))
        #expect(url.clientName == "crm")
        #expect(url.protocolVersion == 2)
    }

    @Test func passwordOnly() throws {
        let url = try RedisURL("redis://:secret@127.0.0.1:6379/2")
        #expect(url.username == nil)
        #expect(url.password == "secret")
        #expect(url.database == 2)
        // redis-py reads a lone user-info part as the password.
        #expect(try RedisURL("redis://secret@host").password == "secret")
    }

    @Test func ipv6AndTLS() throws {
        let url = try RedisURL("rediss://[::1]:6390/0?ca=/etc/ca.pem&verify=no-hostname")
        #expect(url.endpoint == .tcp(host: "::1", port: 6390))
        #expect(url.tls == RedisURL.TLS(caCertificatePath: "/etc/ca.pem", verification: .noHostname))
    }

    @Test func unixSocket() throws {
        let url = try RedisURL("unix:///var/run/redis/redis.sock?db=3&password=x")
        #expect(url.endpoint == .unixSocket(path: "/var/run/redis/redis.sock"))
        #expect(url.database == 3)
        #expect(url.password == "x")
    }

    @Test func descriptionHidesThePassword() throws {
        let url = try RedisURL("redis://admin:topsecret@db:6379/1")
        #expect(url.description == "redis://admin:***@db:6379/1")
        #expect(!"\(try RedisURL("unix:///s.sock?password=topsecret"))".contains("topsecret"))
    }

    @Test(arguments: [
        "localhost:6379", "http://host", "redis://host:0", "redis://host:99999", "redis://host/abc",
        "redis://host?verify=none", "redis://host?bogus=1", "unix://relative.sock", "redis://host?timeout=-1",
    ])
    func rejects(_ text: String) {
        #expect(throws: RedisURLError.self) { try RedisURL(text) }
    }

    @Test func errorsNeverShowThePassword() {
        do {
            _ = try RedisURL("redis://u:hunter2@host:notaport")
            Issue.record("accepted")
        } catch {
            #expect(!error.description.contains("hunter2"))
        }
    }

    @Test func backoffGrowsWithJitterAndIsCapped() {
        let backoff = Backoff(base: .milliseconds(100), maximum: .seconds(2))
        var generator = SystemRandomNumberGenerator()
        for failures in 1...12 {
            let ceiling = min(Duration.milliseconds(100 * (1 << (failures - 1))), .seconds(2))
            for _ in 0..<20 {
                let delay = backoff.delay(afterFailures: failures, using: &generator)
                #expect(delay <= ceiling && delay >= ceiling / 2)
            }
        }
        #expect(backoff.delay(afterFailures: 0) == .zero)
    }
}
