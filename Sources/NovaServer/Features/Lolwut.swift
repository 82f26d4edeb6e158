#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// LOLWUT version 5: Georg Nees's "Schotter" (1968) as Redis draws it — rows of squares, more rotated
/// and displaced the lower they are — on a pixel canvas rendered with Braille characters (2×4 pixels
/// per character).
enum Lolwut {
    /// One bit per pixel: the largest canvas Redis allows (1,000 columns, one square per row, 200 rows)
    /// is 2,000 × 399,204 pixels.
    struct Canvas {
        let width: Int, height: Int
        private var bits: [UInt64]

        init(width: Int, height: Int) {
            self.width = width
            self.height = height
            bits = Array(repeating: 0, count: (max(0, width * height) + 63) / 64)
        }

        func pixel(_ x: Int, _ y: Int) -> Bool {
            guard x >= 0 && y >= 0 && x < width && y < height else { return false }
            let index = x + y * width
            return bits[index >> 6] & (1 << UInt64(index & 63)) != 0
        }

        mutating func set(_ x: Int, _ y: Int) {
            guard x >= 0 && y >= 0 && x < width && y < height else { return }
            let index = x + y * width
            bits[index >> 6] |= 1 << UInt64(index & 63)
        }

        /// Bresenham's line.
        mutating func line(_ x1: Int, _ y1: Int, _ x2: Int, _ y2: Int) {
            var (x, y) = (x1, y1)
            let dx = abs(x2 - x1), dy = abs(y2 - y1)
            let sx = x1 < x2 ? 1 : -1, sy = y1 < y2 ? 1 : -1
            var error = dx - dy
            while true {
                set(x, y)
                if x == x2 && y == y2 { break }
                let doubled = error * 2
                if doubled > -dy { error -= dy; x += sx }
                if doubled < dx { error += dx; y += sy }
            }
        }

        /// A square centred on (x, y) with sides `size` long, rotated by `angle` radians.
        mutating func square(_ x: Int, _ y: Int, size: Double, angle: Double) {
            let half = (size / 1.4142135623).rounded()
            var k = Double.pi / 4 + angle
            var points: [(Int, Int)] = []
            for _ in 0..<4 {
                points.append((Int((sin(k) * half + Double(x)).rounded()), Int((cos(k) * half + Double(y)).rounded())))
                k += Double.pi / 2
            }
            for index in 0..<4 {
                let next = points[(index + 1) % 4]
                line(points[index].0, points[index].1, next.0, next.1)
            }
        }

        /// Each 2×4 block of pixels as one Braille character (U+2800 + the dots, three UTF-8 bytes), rows
        /// separated by newlines.
        func rendered() -> [UInt8] {
            var text: [UInt8] = []
            text.reserveCapacity(((width + 1) / 2 * 3 + 1) * ((height + 3) / 4))
            let layout = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (0, 3), (1, 3)]
            for y in stride(from: 0, to: height, by: 4) {
                for x in stride(from: 0, to: width, by: 2) {
                    var dots = 0
                    for (bit, (dx, dy)) in layout.enumerated() where pixel(x + dx, y + dy) { dots |= 1 << bit }
                    let scalar = 0x2800 + dots
                    text += [UInt8(0xE0 | scalar >> 12), UInt8(0x80 | (scalar >> 6) & 0x3F), UInt8(0x80 | scalar & 0x3F)]
                }
                if y != height - 1 { text.append(10) }
            }
            return text
        }
    }

    static func schotter(columns: Int, squaresPerRow: Int, squaresPerColumn: Int) -> [UInt8] {
        let width = columns * 2
        let padding = width > 4 ? 2 : 0
        let side = Double(width - padding * 2) / Double(squaresPerRow)
        let height = Int(side * Double(squaresPerColumn)) + padding * 2
        var canvas = Canvas(width: width, height: height)
        for row in 0..<squaresPerColumn {
            for column in 0..<squaresPerRow {
                var x = Int(Double(column) * side + side / 2) + padding
                var y = Int(Double(row) * side + side / 2) + padding
                var angle = 0.0
                if row > 1 {
                    func jitter() -> Double {
                        let value = Double.random(in: 0...1) / Double(squaresPerColumn) * Double(row)
                        return Bool.random() ? -value : value
                    }
                    angle = jitter()
                    x = Int(Double(x) + jitter() * side / 3)
                    y = Int(Double(y) + jitter() * side / 3)
                }
                canvas.square(x, y, size: side, angle: angle)
            }
        }
        return canvas.rendered()
    }
}

extension Lolwut {
    /// LOLWUT version 6: a skyline as Redis draws it ("Plaguemon" by hikikomori) — two rows of grey
    /// buildings in the background, black ones with lit windows in front — in four ANSI colours on a
    /// white sky, one terminal character per pixel.
    static func skyline(columns: Int, rows: Int) -> [UInt8] {
        var pixels = [UInt8](repeating: 3, count: columns * rows)  // 0 black, 1 dark grey, 2 grey, 3 white
        func pixel(_ x: Int, _ y: Int) -> UInt8 {
            x >= 0 && y >= 0 && x < columns && y < rows ? pixels[x + y * columns] : 0
        }

        func building(x offset: Int, width: Int, height: Int, color: UInt8, windows: Bool) {
            let bottom = rows - 1, top = bottom - height + 1
            guard bottom >= top else { return }
            for y in stride(from: bottom, through: top, by: -1) {
                for x in offset..<(offset + width) {
                    // The roof is four pixels narrower.
                    if y == top && (x <= offset + 1 || x >= offset + width - 2) { continue }
                    var shade = color
                    if windows && x > offset + 1 && x < offset + width - 2 && y > top + 1 && y < bottom - 1 {
                        let column = x - (offset + 1), row = y - (top + 1)
                        // Windows two pixels wide and one tall (terminal characters are not square).
                        if (column / 2) % 2 == 1 && row % 2 == 1 {
                            repeat { shade = UInt8(1 + Int.random(in: 0..<2)) } while shade == color
                            if column % 2 == 1 { shade = pixel(x - 1, y) }
                        }
                    }
                    if x >= 0 && y >= 0 && x < columns && y < rows { pixels[x + y * columns] = shade }
                }
            }
        }

        // Background buildings without windows, the lighter ones behind.
        for color: UInt8 in [2, 1] {
            var offset = -10
            while offset < columns {
                offset += Int.random(in: 0..<8)
                let width = 10 + Int.random(in: 0..<9)
                let height = color == 2 ? rows / 2 + Int.random(in: 0..<rows) / 2 : rows / 2 + Int.random(in: 0..<rows) / 3
                building(x: offset, width: width, height: height, color: color, windows: false)
                offset += color == 2 ? width / 2 : width + 1
            }
        }
        // Black buildings in front, with windows.
        var offset = -10
        while offset < columns {
            offset += Int.random(in: 0..<8)
            var width = 5 + Int.random(in: 0..<14)
            if width % 4 != 0 { width += width % 3 }
            let height = rows / 3 + Int.random(in: 0..<rows) / 2
            building(x: offset, width: width, height: height, color: 0, windows: true)
            offset += width + 5
        }

        let escapes: [[UInt8]] = ["0;30;40m", "0;90;100m", "0;37;47m", "0;97;107m"].map { Array($0.utf8) }
        var text: [UInt8] = []
        text.reserveCapacity(rows * (columns * 17 + 1))
        for y in 0..<rows {
            for x in 0..<columns {
                text += [27, UInt8(ascii: "[")] + escapes[Int(pixels[x + y * columns])] + [32, 27] + Array("[0m".utf8)
            }
            if y != rows - 1 { text.append(10) }
        }
        return text
    }
}
