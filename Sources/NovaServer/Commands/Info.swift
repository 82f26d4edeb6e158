#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NovaEngine
import NovaRESP

/// INFO: the report operators and tools read, with Redis's section and field names.
enum Info {
    static let defaultSections = ["server", "clients", "memory", "persistence", "stats", "replication", "cpu", "modules", "errorstats", "cluster", "keyspace"]
    static let allSections = ["server", "clients", "memory", "persistence", "stats", "replication", "cpu", "modules", "commandstats", "errorstats", "latencystats", "cluster", "keyspace", "nova"]

    /// The sections asked for by INFO's arguments (`default`, `all`, `everything` or names).
    static func sections(for arguments: [String]) -> [String] {
        if arguments.isEmpty { return defaultSections }
        var chosen = Set<String>()
        for argument in arguments.map({ $0.lowercased() }) {
            switch argument {
            case "default": chosen.formUnion(defaultSections)
            case "all", "everything": chosen.formUnion(allSections)
            default: chosen.insert(argument)
            }
        }
        return allSections.filter { chosen.contains($0) }
    }

    /// Renders the report (lock held).
    static func render(_ server: ServerCore, sections: [String]) -> String {
        var blocks: [String] = []
        for section in sections {
            var lines: [String] = []
            switch section {
            case "server": lines = serverSection(server)
            case "clients": lines = clientsSection(server)
            case "memory": lines = memorySection(server)
            case "persistence": lines = persistenceSection(server)
            case "stats": lines = statsSection(server)
            case "replication": lines = replicationSection(server)
            case "cpu": lines = cpuSection()
            case "modules": lines = []
            case "commandstats": lines = commandStatsSection(server)
            case "errorstats": lines = server.errorStats.sorted { $0.key < $1.key }.map { "errorstat_\($0.key):count=\($0.value)" }
            case "latencystats": lines = server.latencyStatsLines()
            case "cluster": lines = ["cluster_enabled:0"]
            case "keyspace": lines = keyspaceSection(server)
            case "nova": lines = server.novaInfoLines()
            default: continue
            }
            let title = section == "commandstats" ? "Commandstats" : section == "errorstats" ? "Errorstats"
                : section == "latencystats" ? "Latencystats" : section == "cpu" ? "CPU" : section == "nova" ? "NovaCache" : section.prefix(1).uppercased() + section.dropFirst()
            blocks.append((["# \(title)"] + lines).joined(separator: "\r\n"))
        }
        return blocks.isEmpty ? "" : blocks.joined(separator: "\r\n\r\n") + "\r\n"
    }

    static func human(_ bytes: Int) -> String {
        let value = Double(bytes)
        func format(_ v: Double, _ unit: String) -> String { String(format2: v) + unit }
        if value < 1024 { return "\(bytes)B" }
        if value < 1024 * 1024 { return format(value / 1024, "K") }
        if value < 1024 * 1024 * 1024 { return format(value / (1024 * 1024), "M") }
        if value < 1024.0 * 1024 * 1024 * 1024 { return format(value / (1024 * 1024 * 1024), "G") }
        return format(value / (1024.0 * 1024 * 1024 * 1024), "T")
    }

    static func serverSection(_ server: ServerCore) -> [String] {
        var name = utsname()
        uname(&name)
        func field<T>(_ value: T) -> String {
            withUnsafeBytes(of: value) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
        }
        let now = SystemClock.nowMicroseconds()
        let uptime = (now / 1000 - server.startTime) / 1000
        let hz = server.config.settings.hz
        return [
            "redis_version:\(ConnectionCommands.redisVersion)",
            "redis_git_sha1:00000000",
            "redis_git_dirty:0",
            "redis_build_id:0",
            "redis_mode:standalone",
            "nova_cache_version:\(NovaCacheVersion.current)",
            "os:\(field(name.sysname)) \(field(name.release)) \(field(name.machine))",
            "arch_bits:64",
            "monotonic_clock:POSIX clock_gettime",
            "multiplexing_api:epoll",
            "atomicvar_api:c11-builtin",
            "process_id:\(getpid())",
            "process_supervised:no",
            "run_id:\(server.runID)",
            "tcp_port:\(server.listeningPort)",
            "server_time_usec:\(now)",
            "uptime_in_seconds:\(uptime)",
            "uptime_in_days:\(uptime / 86400)",
            "hz:\(hz)",
            "configured_hz:\(hz)",
            "lru_clock:\((now / 1_000_000) & 0xFFFFFF)",
            "executable:\(CommandLine.arguments.first ?? "")",
            "config_file:\(server.config.configFilePath ?? "")",
            "io_threads_active:0",
        ]
    }

    static func clientsSection(_ server: ServerCore) -> [String] {
        [
            "connected_clients:\(server.clients.count)",
            "cluster_connections:0",
            "maxclients:\(server.config.settings.maxClients)",
            "client_recent_max_input_buffer:\(server.clients.all.map(\.queryBufferBytes).max() ?? 0)",
            "client_recent_max_output_buffer:\(server.clients.all.map(\.pendingOutputBytes).max() ?? 0)",
            "blocked_clients:\(server.blocking.count + server.clientPause.postponed.count)",
            "tracking_clients:\(server.tracking.clientCount)",
            "clients_in_timeout_table:0",
        ]
    }

    static func memorySection(_ server: ServerCore) -> [String] {
        server.refreshMemorySample()
        let used = server.usedMemory
        let rss = ProcessMemory.residentBytes()
        let total = ProcessMemory.totalSystemMemory()
        let dataset = server.keyspace.footprint
        let maxMemory = server.config.settings.maxMemory
        let peak = max(server.peakMemory, used)
        let luaMemory = server.lua?.memoryBytes ?? 0
        let scriptBytes = server.lua?.cachedBytes ?? 0
        let functions = server.functionEngine
        let functionsMemory = functions?.memoryBytes ?? 0
        let functionBytes = functions?.libraryBytes ?? 0
        func ratio(_ a: Int, _ b: Int) -> String { b == 0 ? "0.00" : String(format2: Double(a) / Double(b)) }
        return [
            "used_memory:\(used)",
            "used_memory_human:\(human(used))",
            "used_memory_rss:\(rss)",
            "used_memory_rss_human:\(human(rss))",
            "used_memory_peak:\(peak)",
            "used_memory_peak_human:\(human(peak))",
            "used_memory_peak_perc:\(ratio(used * 100, peak))%",
            "used_memory_overhead:\(max(0, used - dataset))",
            "used_memory_dataset:\(dataset)",
            "used_memory_dataset_perc:\(ratio(dataset * 100, max(used, 1)))%",
            "allocator_allocated:\(used)",
            "total_system_memory:\(total)",
            "total_system_memory_human:\(human(total))",
            "used_memory_lua:\(luaMemory)",
            "used_memory_vm_eval:\(luaMemory)",
            "used_memory_lua_human:\(human(luaMemory))",
            "used_memory_scripts_eval:\(scriptBytes)",
            "number_of_cached_scripts:\(server.lua?.scriptCount ?? 0)",
            "number_of_functions:\(functions?.functionCount ?? 0)",
            "number_of_libraries:\(functions?.libraries.count ?? 0)",
            "used_memory_vm_functions:\(functionsMemory)",
            "used_memory_vm_total:\(luaMemory + functionsMemory)",
            "used_memory_vm_total_human:\(human(luaMemory + functionsMemory))",
            "used_memory_functions:\(functionBytes)",
            "used_memory_scripts:\(scriptBytes + functionBytes)",
            "used_memory_scripts_human:\(human(scriptBytes + functionBytes))",
            "maxmemory:\(maxMemory)",
            "maxmemory_human:\(human(maxMemory))",
            "maxmemory_policy:\(server.config.settings.evictionPolicy.rawValue)",
            "mem_fragmentation_ratio:\(ratio(rss, max(used, 1)))",
            "mem_fragmentation_bytes:\(rss - used)",
            "mem_not_counted_for_evict:0",
            "mem_replication_backlog:0",
            "mem_clients_slaves:0",
            "mem_clients_normal:\(server.clients.all.reduce(0) { $0 + $1.queryBufferBytes + $1.pendingOutputBytes })",
            "mem_aof_buffer:0",
            "mem_allocator:libc",
            "active_defrag_running:0",
            "lazyfree_pending_objects:\(LazyFreer.shared.statistics.pending)",
            "lazyfreed_objects:\(LazyFreer.shared.statistics.freed)",
        ]
    }

    static func persistenceSection(_ server: ServerCore) -> [String] {
        let s = server.snapshots
        let now = SystemClock.nowMilliseconds()
        var lines = ["loading:\(s.loading ? 1 : 0)", "async_loading:0"]
        if s.loading {
            let elapsed = max(1, (now - s.loadingStart) / 1000)
            let percent = s.loadingTotalBytes > 0 ? Double(s.loadingLoadedBytes) * 100 / Double(s.loadingTotalBytes) : 0
            let rate = Double(s.loadingLoadedBytes) / Double(elapsed)
            let eta = rate > 0 ? Int(Double(s.loadingTotalBytes - s.loadingLoadedBytes) / rate) : 1
            lines += [
                "loading_start_time:\(s.loadingStart / 1000)",
                "loading_total_bytes:\(s.loadingTotalBytes)",
                "loading_rdb_used_mem:0",
                "loading_loaded_bytes:\(s.loadingLoadedBytes)",
                "loading_loaded_perc:\(String(format2: percent))",
                "loading_eta_seconds:\(eta)",
            ]
        }
        return lines + [
            "current_cow_peak:0",
            "current_cow_size:0",
            "current_cow_size_age:0",
            "current_fork_perc:\(s.inProgress && s.keysTotal > 0 ? String(format2: Double(s.keysProcessed) * 100 / Double(s.keysTotal)) : "0.00")",
            "current_save_keys_processed:\(s.inProgress ? s.keysProcessed : 0)",
            "current_save_keys_total:\(s.inProgress ? s.keysTotal : 0)",
            "rdb_changes_since_last_save:\(server.stats.dirty)",
            "rdb_bgsave_in_progress:\(s.inProgress ? 1 : 0)",
            "rdb_last_save_time:\(s.lastSaveTime)",
            "rdb_last_bgsave_status:\(s.lastBackgroundSaveOK ? "ok" : "err")",
            "rdb_last_bgsave_time_sec:\(s.lastBackgroundSaveSeconds)",
            "rdb_current_bgsave_time_sec:\(s.inProgress ? (now - s.currentStart) / 1000 : -1)",
            "rdb_saves:\(s.saves)",
            "rdb_last_cow_size:0",
            "rdb_last_load_keys_expired:\(s.lastLoadKeysExpired)",
            "rdb_last_load_keys_loaded:\(s.lastLoadKeysLoaded)",
        ] + aofLines(server, now: now)
    }

    static func aofLines(_ server: ServerCore, now: Int64) -> [String] {
        let a = server.aofState
        var lines = [
            "aof_enabled:\(server.aof != nil ? 1 : 0)",
            "aof_rewrite_in_progress:\(a.rewriteInProgress ? 1 : 0)",
            "aof_rewrite_scheduled:\(a.rewriteScheduled ? 1 : 0)",
            "aof_last_rewrite_time_sec:\(a.lastRewriteSeconds)",
            "aof_current_rewrite_time_sec:\(a.rewriteInProgress ? (now - a.currentRewriteStart) / 1000 : -1)",
            "aof_last_bgrewrite_status:\(a.lastRewriteOK ? "ok" : "err")",
            "aof_rewrites:\(a.rewrites)",
            "aof_rewrites_consecutive_failures:\(a.lastRewriteOK ? 0 : 1)",
            "aof_last_write_status:\(server.aof?.lastWriteFailed == true ? "err" : "ok")",
            "aof_last_cow_size:0",
            "module_fork_in_progress:0",
            "module_fork_last_cow_size:0",
        ]
        if let aof = server.aof {
            let sizes = aof.sizes
            lines += [
                "aof_current_size:\(sizes.current)",
                "aof_base_size:\(sizes.base)",
                "aof_pending_rewrite:0",
                "aof_buffer_length:0",
                "aof_pending_bio_fsync:0",
                "aof_delayed_fsync:0",
            ]
        }
        return lines
    }


    static func statsSection(_ server: ServerCore) -> [String] {
        let stats = server.stats
        let engine = server.keyspace.stats
        return [
            "total_connections_received:\(stats.totalConnectionsReceived)",
            "total_commands_processed:\(stats.totalCommandsProcessed)",
            "instantaneous_ops_per_sec:\(Int(server.rates.operations.average.rounded()))",
            "total_net_input_bytes:\(stats.netInputBytes)",
            "total_net_output_bytes:\(stats.netOutputBytes)",
            "total_net_repl_input_bytes:0",
            "total_net_repl_output_bytes:0",
            "instantaneous_input_kbps:\(String(format2: server.rates.inputBytes.average / 1024))",
            "instantaneous_output_kbps:\(String(format2: server.rates.outputBytes.average / 1024))",
            "instantaneous_input_repl_kbps:0.00",
            "instantaneous_output_repl_kbps:0.00",
            "rejected_connections:\(stats.rejectedConnections)",
            "sync_full:0",
            "sync_partial_ok:0",
            "sync_partial_err:0",
            "expired_keys:\(engine.expiredKeys)",
            "expired_stale_perc:\(String(format2: engine.expiredStalePercent * 100))",
            "expired_time_cap_reached_count:\(engine.expiredTimeCapReachedCount)",
            "expire_cycle_cpu_milliseconds:0",
            "evicted_keys:\(engine.evictedKeys)",
            "evicted_clients:0",
            "total_eviction_exceeded_time:0",
            "current_eviction_exceeded_time:0",
            "keyspace_hits:\(engine.keyspaceHits)",
            "keyspace_misses:\(engine.keyspaceMisses)",
            "pubsub_channels:\(server.pubsub.channels.count)",
            "pubsub_patterns:\(server.pubsub.patternCount)",
            "pubsubshard_channels:\(server.pubsub.shardChannels.count)",
            "latest_fork_usec:0",
            "total_forks:0",
            "migrate_cached_sockets:0",
            "slave_expires_tracked_keys:0",
            "active_defrag_hits:0",
            "active_defrag_misses:0",
            "active_defrag_key_hits:0",
            "active_defrag_key_misses:0",
            "total_active_defrag_time:0",
            "current_active_defrag_time:0",
            "tracking_total_keys:\(server.tracking.keyCount)",
            "tracking_total_items:\(server.tracking.itemCount)",
            "tracking_total_prefixes:\(server.tracking.prefixCount)",
            "unexpected_error_replies:0",
            "total_error_replies:\(stats.totalErrorReplies)",
            "dump_payload_sanitizations:0",
            "total_reads_processed:\(stats.totalReads)",
            "total_writes_processed:\(stats.totalWrites)",
            "io_threaded_reads_processed:0",
            "io_threaded_writes_processed:0",
            "reply_buffer_shrinks:0",
            "reply_buffer_expands:0",
        ]
    }

    static func replicationSection(_ server: ServerCore) -> [String] {
        [
            "role:master",
            "connected_slaves:0",
            "master_failover_state:no-failover",
            "master_replid:\(server.replicationID)",
            "master_replid2:0000000000000000000000000000000000000000",
            "master_repl_offset:0",
            "second_repl_offset:-1",
            "repl_backlog_active:0",
            "repl_backlog_size:1048576",
            "repl_backlog_first_byte_offset:0",
            "repl_backlog_histlen:0",
        ]
    }

    static func cpuSection() -> [String] {
        let cpu = ProcessMemory.cpuTimes()
        func six(_ v: Double) -> String { String(format6: v) }
        return [
            "used_cpu_sys:\(six(cpu.system))",
            "used_cpu_user:\(six(cpu.user))",
            "used_cpu_sys_children:0.000000",
            "used_cpu_user_children:0.000000",
            "used_cpu_sys_main_thread:\(six(cpu.system))",
            "used_cpu_user_main_thread:\(six(cpu.user))",
        ]
    }

    static func commandStatsSection(_ server: ServerCore) -> [String] {
        var lines: [String] = []
        for spec in server.commands.all {
            let stat = server.commandStats[spec.id]
            guard stat.calls > 0 || stat.failedCalls > 0 || stat.rejectedCalls > 0 else { continue }
            let perCall = stat.calls == 0 ? 0 : stat.microseconds / Double(stat.calls)
            lines.append("cmdstat_\(spec.fullName):calls=\(stat.calls),usec=\(Int(stat.microseconds)),usec_per_call=\(String(format2: perCall)),rejected_calls=\(stat.rejectedCalls),failed_calls=\(stat.failedCalls)")
        }
        return lines
    }

    static func keyspaceSection(_ server: ServerCore) -> [String] {
        var lines: [String] = []
        let now = server.keyspace.now
        for (index, db) in server.keyspace.databases.enumerated() where db.count > 0 {
            let averageTTL = db.volatileCount > 0 ? max(0, Int64(db.expireSum / Double(db.volatileCount)) - now) : 0
            lines.append("db\(index):keys=\(db.count),expires=\(db.volatileCount),avg_ttl=\(averageTTL)")
        }
        return lines
    }
}

extension String {
    /// `%.2f`.
    init(format2 value: Double) { self = String(fixed: value, digits: 2) }
    /// `%.6f`.
    init(format6 value: Double) { self = String(fixed: value, digits: 6) }

    init(fixed value: Double, digits: Int) {
        guard value.isFinite else {
            self = value.isNaN ? "nan" : (value > 0 ? "inf" : "-inf")
            return
        }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        let integer = Int64(scaled / scale)
        let fraction = Int64(scaled) - integer * Int64(scale)
        var fractionText = String(fraction)
        while fractionText.count < digits { fractionText = "0" + fractionText }
        self = (value < 0 && scaled != 0 ? "-" : "") + String(integer) + (digits > 0 ? "." + fractionText : "")
    }
}
