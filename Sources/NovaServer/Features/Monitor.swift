import NIOCore
import NovaRESP

/// MONITOR: every command a client runs, as Redis 7.0 shows it — after it ran (so SELECT shows its new
/// database), with the arguments as sent, quoted like `sdscatrepr`, and secrets redacted — pushed to
/// every monitoring client. Admin commands (CONFIG, DEBUG, CLIENT LIST …) are not shown.
extension ServerCore {
    func startMonitoring(_ client: ClientState) {
        guard !client.isMonitor else { return }
        client.isMonitor = true
        monitors.append(client)
    }

    func stopMonitoring(_ client: ClientState) {
        guard client.isMonitor else { return }
        client.isMonitor = false
        monitors.removeAll { $0 === client }
    }

    /// Sends `+<seconds>.<micros> [<db> <addr>] "arg" …` to every monitor (lock held).
    func feedMonitors(_ client: ClientState, _ spec: CommandSpec, _ args: Arguments) {
        let micros = SystemClock.nowMicroseconds()
        var line: [UInt8] = Array("+\(micros / 1_000_000).\(String(micros % 1_000_000).leftPadded(to: 6)) [\(client.database) \(client.address)]".utf8)
        let redacted = Self.redactedArguments(spec, args)
        for index in 0..<args.count {
            line.append(32)
            if redacted.contains(index) {
                line += Array("\"(redacted)\"".utf8)
            } else {
                Self.appendRepr(args[index].readableBytesView, to: &line)
            }
        }
        line += [13, 10]
        let limit = config.settings.replicaOutputLimit
        for monitor in monitors {
            guard let connection = monitor.connection else { continue }
            var buffer = ByteBuffer()
            buffer.writeBytes(line)
            connection.push(buffer, limit: limit)
        }
    }

    /// The positions Redis replaces with "(redacted)": AUTH's arguments, HELLO's AUTH username and password.
    static func redactedArguments(_ spec: CommandSpec, _ args: Arguments) -> Set<Int> {
        switch spec.fullName {
        case "auth":
            return Set(1..<args.count)
        case "hello":
            var positions = Set<Int>()
            var index = 2
            while index < args.count {
                if String(buffer: args[index]).lowercased() == "auth", index + 2 < args.count {
                    positions.formUnion([index + 1, index + 2])
                    index += 3
                } else {
                    index += 1
                }
            }
            return positions
        default:
            return []
        }
    }

    /// Appends `bytes` quoted as Redis's `sdscatrepr` does.
    static func appendRepr(_ bytes: some Collection<UInt8>, to line: inout [UInt8]) {
        line.append(34)
        for byte in bytes {
            switch byte {
            case 92: line += [92, 92]  // \\
            case 34: line += [92, 34]  // \"
            case 10: line += [92, 110]  // \n
            case 13: line += [92, 114]  // \r
            case 9: line += [92, 116]  // \t
            case 7: line += [92, 97]  // \a
            case 8: line += [92, 98]  // \b
            case 32...126: line.append(byte)
            default:
                let hex = Array("0123456789abcdef".utf8)
                line += [92, 120, hex[Int(byte >> 4)], hex[Int(byte & 15)]]
            }
        }
        line.append(34)
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
