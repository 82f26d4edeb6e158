#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An I/O failure with the operation, the path and the system's reason.
package struct PersistenceError: Error, CustomStringConvertible, Sendable {
    package let message: String
    package init(_ message: String) { self.message = message }
    package var description: String { message }

    static func errno(_ what: String, _ path: String) -> PersistenceError {
        PersistenceError("\(what) '\(path)': \(String(cString: strerror(Glibc.errno)))")
    }
}

/// Small, careful file operations for snapshots and the append-only file.
enum FileIO {
    /// Writes all of `bytes` to `descriptor`, retrying short writes and EINTR.
    static func writeAll(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws(PersistenceError) {
        var offset = 0
        while offset < bytes.count {
            let written = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw .errno("Write error saving", path)
            }
            offset += written
        }
    }

    /// fsync, reporting failures.
    static func sync(_ descriptor: Int32, path: String) throws(PersistenceError) {
        if fsync(descriptor) != 0 { throw .errno("fsync failed for", path) }
    }

    /// Makes a rename durable by syncing the directory that holds it.
    static func syncDirectory(_ directory: String) throws(PersistenceError) {
        let descriptor = open(directory, O_RDONLY | O_DIRECTORY)
        guard descriptor >= 0 else { throw .errno("Can't open directory", directory) }
        defer { close(descriptor) }
        if fsync(descriptor) != 0 { throw .errno("fsync failed for directory", directory) }
    }

    /// Whether `path` exists, and its size.
    static func size(_ path: String) -> Int? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return Int(info.st_size)
    }

    /// Writes a whole file atomically: temporary file, fsync, rename, directory fsync. A crash at any point
    /// leaves either the old file or the new one.
    ///
    /// `install` runs the rename: a background save passes one that takes the server lock and gives up
    /// when the save was abandoned meanwhile, so that an older image never replaces a newer one.
    static func writeAtomically(
        directory: String, name: String, install: (_ rename: () throws -> Void) throws -> Void = { try $0() },
        _ produce: (_ write: @escaping ([UInt8]) throws -> Void) throws -> Void
    ) throws -> Int {
        let final = directory + "/" + name
        let temporary = directory + "/temp-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).\(name)"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw PersistenceError.errno("Failed opening the temp file for writing", temporary) }
        final class Counter { var bytes = 0 }
        let counter = Counter()
        do {
            try produce { chunk in
                try chunk.withUnsafeBytes { try writeAll(descriptor, $0, path: temporary) }
                counter.bytes += chunk.count
            }
            try sync(descriptor, path: temporary)
            close(descriptor)
            try install {
                guard rename(temporary, final) == 0 else {
                    throw PersistenceError.errno("Error moving temp file on the final destination", final)
                }
            }
            try syncDirectory(directory)
        } catch {
            close(descriptor)
            unlink(temporary)
            throw error
        }
        return counter.bytes
    }
}
