import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// HTTP/1.1 requests whose response body is handed over as the network delivers it, so that an event
/// stream's events can be acted on before the stream ends (Streamable HTTP's progress notifications and
/// its standalone notification stream). One connection per request; `https` with the system's trust roots.
///
/// Foundation's `URLSession` on Linux only returns whole bodies through its async API, and the SDK's HTTP
/// transport hands event streams over unparsed there; this is the small part of an HTTP client the
/// upstream transport needs, on the event loops the gateway already runs.
struct StreamingHTTPClient: Sendable {
    /// A response: its head, and its body in the chunks it arrived in. Dropping the body stream (or
    /// cancelling the task reading it) closes the connection.
    struct Response: Sendable {
        var head: HTTPResponseHead
        var body: AsyncThrowingStream<ByteBuffer, any Error>

        var status: Int { Int(head.status.code) }
        func header(_ name: String) -> String? { head.headers.first(name: name) }

        /// The whole body, failing beyond `limit` bytes.
        func collect(upTo limit: Int) async throws -> ByteBuffer {
            var whole = ByteBuffer()
            for try await var chunk in body {
                guard whole.readableBytes + chunk.readableBytes <= limit else { throw HTTPClientFailure.bodyTooLarge(limit) }
                whole.writeBuffer(&chunk)
            }
            return whole
        }
    }

    enum HTTPClientFailure: Error, CustomStringConvertible {
        case badURL(String)
        case closedBeforeResponse
        case bodyTooLarge(Int)
        case tls(host: String, reason: String)

        var description: String {
            switch self {
            case .badURL(let url): return "not an http:// or https:// URL: \(url)"
            case .closedBeforeResponse: return "the connection closed before a response"
            case .bodyTooLarge(let limit): return "a response body longer than \(limit) bytes"
            case .tls(let host, let reason): return "TLS with \(host) failed: \(reason)"
            }
        }
    }

    let connectTimeout: TimeAmount
    private let tls: NIOSSLContext?
    private let group: any EventLoopGroup

    /// - Parameters:
    ///   - trustedCertificates: a PEM file of the certificate authorities `https` servers are checked
    ///     against, instead of the system's.
    init(
        trustedCertificates: String? = nil, connectTimeout: TimeAmount = .seconds(10),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) throws {
        self.connectTimeout = connectTimeout
        self.group = group
        var configuration = TLSConfiguration.makeClientConfiguration()
        if let trustedCertificates { configuration.trustRoots = .file(trustedCertificates) }
        tls = try NIOSSLContext(configuration: configuration)
    }

    /// Sends a request and returns once the response head has arrived.
    func send(_ method: HTTPMethod, to url: URL, headers: [(String, String)], body: Data? = nil) async throws -> Response {
        guard let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https", let host = url.host else {
            throw HTTPClientFailure.badURL(url.absoluteString)
        }
        let secure = scheme == "https"
        let port = url.port ?? (secure ? 443 : 80)
        var target = url.path.isEmpty ? "/" : url.path
        if let query = url.query { target += "?\(query)" }
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: target)
        head.headers.add(name: "Host", value: url.port.map { "\(host):\($0)" } ?? host)
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        if let body { head.headers.add(name: "Content-Length", value: "\(body.count)") }
        head.headers.add(name: "Connection", value: "close")

        let tls = secure ? self.tls : nil
        // An address is no server name: without one the certificate is checked against the peer's address.
        let serverName = (try? SocketAddress(ipAddress: host, port: port)) == nil ? host : nil
        let channel = try await ClientBootstrap(group: group)
            .connectTimeout(connectTimeout)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverName))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
        let payload = body.map { ByteBuffer(bytes: $0) }
        let (stream, chunks) = AsyncThrowingStream<ByteBuffer, any Error>.makeStream()
        let (heads, headContinuation) = AsyncThrowingStream<HTTPResponseHead, any Error>.makeStream()
        let exchange = Task {
            do {
                try await channel.executeThenClose { inbound, outbound in
                    try await outbound.write(.head(head))
                    if let payload { try await outbound.write(.body(.byteBuffer(payload))) }
                    try await outbound.write(.end(nil))
                    parts: for try await part in inbound {
                        switch part {
                        case .head(let responseHead) where responseHead.status.code >= 200:
                            headContinuation.yield(responseHead)
                            headContinuation.finish()
                        case .head:
                            continue  // 1xx
                        case .body(let chunk):
                            chunks.yield(chunk)
                        case .end:
                            break parts
                        }
                    }
                }
                headContinuation.finish(throwing: HTTPClientFailure.closedBeforeResponse)
                chunks.finish()
            } catch {
                let failure = Self.explain(error, host: "\(host):\(port)")
                headContinuation.finish(throwing: failure)
                chunks.finish(throwing: failure)
            }
        }
        chunks.onTermination = { _ in exchange.cancel() }
        return try await withTaskCancellationHandler {
            var waiting = heads.makeAsyncIterator()
            guard let responseHead = try await waiting.next() else { throw HTTPClientFailure.closedBeforeResponse }
            return Response(head: responseHead, body: stream)
        } onCancel: {
            exchange.cancel()
        }
    }

    /// TLS failures in words an operator acts on (BoringSSL's are codes and source locations).
    private static func explain(_ error: any Error, host: String) -> any Error {
        guard let tls = error as? NIOSSLError else { return error }
        let detail = "\(tls)"
        if detail.contains("CERTIFICATE_VERIFY_FAILED") {
            return HTTPClientFailure.tls(host: host, reason: "its certificate is not trusted (CERTIFICATE_VERIFY_FAILED): give the authority that signed it as the upstream's \"ca\"")
        }
        return HTTPClientFailure.tls(host: host, reason: detail)
    }
}
