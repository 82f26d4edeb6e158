import Foundation

/// Redis's geohash (geohash.c, geohash_helper.c): how GEOADD turns a longitude and latitude into a
/// sorted-set score and how the GEO searches find the score ranges to scan.
///
/// A position is quantised at 26 steps per axis inside longitude [-180, 180] and latitude
/// [-85.05112878, 85.05112878] (the Web Mercator limits), the two 26-bit cell numbers interleaved into a
/// 52-bit integer (latitude in the even bits, longitude in the odd bits) that a double holds exactly.
/// Every computation below follows Redis's order of floating-point operations, so that scores,
/// coordinates, distances and search results are the same bits as redis-server's.
public enum GeoHash {
    /// The precision of stored positions: 26 bits per axis.
    public static let maxStep: UInt8 = 26
    /// The latitude limit of the index (EPSG:900913).
    public static let latitudeLimit = 85.05112878
    /// Earth's quadratic mean radius in meters, as Redis uses it for every distance.
    public static let earthRadius = 6372797.560856
    static let mercatorMax = 20037726.37
    static let degreesToRadians = Double.pi / 180.0

    /// A closed interval of degrees.
    public struct Range: Sendable, Equatable {
        public var min: Double
        public var max: Double

        public init(_ min: Double, _ max: Double) {
            self.min = min
            self.max = max
        }
    }

    /// The index's ranges.
    public static let longitudeRange = Range(-180, 180)
    public static let latitudeRange = Range(-latitudeLimit, latitudeLimit)
    /// The ranges of standard geohash strings (GEOHASH re-encodes positions with these).
    public static let standardLatitudeRange = Range(-90, 90)

    /// Interleaved cell numbers at `step` bits per axis. Bits and step both 0 mean "no cell" (Redis's
    /// `GZERO`): a search area that was excluded.
    public struct Cell: Sendable, Equatable {
        public var bits: UInt64
        public var step: UInt8

        public init(bits: UInt64, step: UInt8) {
            self.bits = bits
            self.step = step
        }

        static let none = Cell(bits: 0, step: 0)
        var isNone: Bool { bits == 0 && step == 0 }

        /// The cell's first 52-bit score; the next cell's is the end of its score range.
        var scoreRange: (min: Double, max: Double) {
            let shift = UInt64(52 - Int(step) * 2)
            return (Double(bits << shift), Double((bits &+ 1) << shift))
        }
    }

    /// A cell's extent.
    public struct Area: Sendable {
        public var cell: Cell
        public var longitude: Range
        public var latitude: Range

        /// The center, clamped to the index's ranges (`geohashDecodeAreaToLongLat`).
        public var center: (longitude: Double, latitude: Double) {
            var longitude = (self.longitude.min + self.longitude.max) / 2
            longitude = Swift.min(Swift.max(longitude, GeoHash.longitudeRange.min), GeoHash.longitudeRange.max)
            var latitude = (self.latitude.min + self.latitude.max) / 2
            latitude = Swift.min(Swift.max(latitude, GeoHash.latitudeRange.min), GeoHash.latitudeRange.max)
            return (longitude, latitude)
        }
    }

    // MARK: Encoding

    /// The cell holding a position at `step` bits per axis (`geohashEncode`); nil outside the index's
    /// limits or the given ranges.
    public static func encode(
        longitude: Double, latitude: Double, step: UInt8,
        longitudeRange: Range = longitudeRange, latitudeRange: Range = latitudeRange
    ) -> Cell? {
        guard step > 0, step <= 32 else { return nil }
        if longitude > 180 || longitude < -180 || latitude > latitudeLimit || latitude < -latitudeLimit { return nil }
        if latitude < latitudeRange.min || latitude > latitudeRange.max
            || longitude < longitudeRange.min || longitude > longitudeRange.max { return nil }
        var latitudeOffset = (latitude - latitudeRange.min) / (latitudeRange.max - latitudeRange.min)
        var longitudeOffset = (longitude - longitudeRange.min) / (longitudeRange.max - longitudeRange.min)
        latitudeOffset *= Double(UInt64(1) << step)
        longitudeOffset *= Double(UInt64(1) << step)
        return Cell(bits: interleave(UInt32(latitudeOffset), UInt32(longitudeOffset)), step: step)
    }

    /// The sorted-set score of a position (GEOADD): the 26-step cell as a 52-bit integer. Nil outside the
    /// index's limits.
    public static func score(longitude: Double, latitude: Double) -> Double? {
        encode(longitude: longitude, latitude: latitude, step: maxStep).map { Double($0.bits) }
    }

    /// The extent of a cell (`geohashDecode`); nil for the "no cell" value.
    public static func decode(
        _ cell: Cell, longitudeRange: Range = longitudeRange, latitudeRange: Range = latitudeRange
    ) -> Area? {
        guard !cell.isNone else { return nil }
        let separated = deinterleave(cell.bits)
        let latitudeScale = latitudeRange.max - latitudeRange.min
        let longitudeScale = longitudeRange.max - longitudeRange.min
        let latitudeCell = UInt32(truncatingIfNeeded: separated)
        let longitudeCell = UInt32(truncatingIfNeeded: separated >> 32)
        let cells = Double(UInt64(1) << cell.step)
        // As in C, the cell number plus one wraps in 32 bits.
        return Area(
            cell: cell,
            longitude: Range(longitudeRange.min + (Double(longitudeCell) * 1.0 / cells) * longitudeScale,
                             longitudeRange.min + (Double(longitudeCell &+ 1) * 1.0 / cells) * longitudeScale),
            latitude: Range(latitudeRange.min + (Double(latitudeCell) * 1.0 / cells) * latitudeScale,
                            latitudeRange.min + (Double(latitudeCell &+ 1) * 1.0 / cells) * latitudeScale))
    }

    /// The position a score stands for (GEOPOS, and every search): the center of its 26-step cell.
    /// Any score decodes, as in Redis: it is converted to a 64-bit integer the way x86-64 C code does.
    public static func position(ofScore score: Double) -> (longitude: Double, latitude: Double) {
        decode(Cell(bits: cUInt64(score), step: maxStep))!.center
    }

    /// GEOHASH's 11-character standard geohash of a score: the position re-encoded with latitude range
    /// [-90, 90], five bits per character, the eleventh always `0`.
    public static func standardHash(ofScore score: Double) -> [UInt8] {
        let alphabet = Array("0123456789bcdefghjkmnpqrstuvwxyz".utf8)
        let position = position(ofScore: score)
        let bits = encode(longitude: position.longitude, latitude: position.latitude, step: maxStep,
                          latitudeRange: standardLatitudeRange)?.bits ?? 0
        var text: [UInt8] = []
        for index in 0..<10 {
            let shift = UInt64(52 - (index + 1) * 5)
            text.append(alphabet[Int((bits >> shift) & 0x1f)])
        }
        text.append(alphabet[0])  // 52 bits fill ten characters; the eleventh is always 0, as in Redis
        return text
    }

    /// `(uint64_t)value` as gcc compiles it for x86-64: truncation below 2^63, and above it truncation of
    /// `value - 2^63` with bit 63 flipped (out-of-range results are `0x8000000000000000`).
    static func cUInt64(_ value: Double) -> UInt64 {
        let twoTo63 = 9223372036854775808.0
        func truncate(_ value: Double) -> UInt64 {
            guard value.isFinite, value > -twoTo63 - 1, value < twoTo63 else { return 1 << 63 }
            return UInt64(bitPattern: Int64(value))
        }
        if value >= twoTo63 { return truncate(value - twoTo63) ^ (1 << 63) }
        return truncate(value)
    }

    /// Spreads `even` over the even bits and `odd` over the odd bits.
    static func interleave(_ even: UInt32, _ odd: UInt32) -> UInt64 {
        func spread(_ value: UInt32) -> UInt64 {
            var x = UInt64(value)
            x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF
            x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF
            x = (x | (x << 4)) & 0x0F0F_0F0F_0F0F_0F0F
            x = (x | (x << 2)) & 0x3333_3333_3333_3333
            x = (x | (x << 1)) & 0x5555_5555_5555_5555
            return x
        }
        return spread(even) | (spread(odd) << 1)
    }

    /// The inverse of `interleave`: the even bits in the low half, the odd bits in the high half.
    static func deinterleave(_ interleaved: UInt64) -> UInt64 {
        func squash(_ value: UInt64) -> UInt64 {
            var x = value & 0x5555_5555_5555_5555
            x = (x | (x >> 1)) & 0x3333_3333_3333_3333
            x = (x | (x >> 2)) & 0x0F0F_0F0F_0F0F_0F0F
            x = (x | (x >> 4)) & 0x00FF_00FF_00FF_00FF
            x = (x | (x >> 8)) & 0x0000_FFFF_0000_FFFF
            x = (x | (x >> 16)) & 0x0000_0000_FFFF_FFFF
            return x
        }
        return squash(interleaved) | (squash(interleaved >> 1) << 32)
    }

    // MARK: Neighbours

    /// The eight cells around one, in the order Redis searches them after the cell itself.
    struct Neighbors {
        var north, south, east, west, northEast, northWest, southEast, southWest: Cell
    }

    /// Moves a cell along the longitude (odd) bits, wrapping around.
    static func moveX(_ cell: Cell, _ direction: Int) -> Cell {
        var x = cell.bits & 0xaaaa_aaaa_aaaa_aaaa
        let y = cell.bits & 0x5555_5555_5555_5555
        let width = UInt64(64 - Int(cell.step) * 2)
        let ones: UInt64 = 0x5555_5555_5555_5555 >> width
        if direction > 0 {
            x = x &+ (ones &+ 1)
        } else {
            x |= ones
            x = x &- (ones &+ 1)
        }
        x &= 0xaaaa_aaaa_aaaa_aaaa >> width
        return Cell(bits: x | y, step: cell.step)
    }

    /// Moves a cell along the latitude (even) bits, wrapping around.
    static func moveY(_ cell: Cell, _ direction: Int) -> Cell {
        let x = cell.bits & 0xaaaa_aaaa_aaaa_aaaa
        var y = cell.bits & 0x5555_5555_5555_5555
        let width = UInt64(64 - Int(cell.step) * 2)
        let ones: UInt64 = 0xaaaa_aaaa_aaaa_aaaa >> width
        if direction > 0 {
            y = y &+ (ones &+ 1)
        } else {
            y |= ones
            y = y &- (ones &+ 1)
        }
        y &= 0x5555_5555_5555_5555 >> width
        return Cell(bits: x | y, step: cell.step)
    }

    static func neighbors(of cell: Cell) -> Neighbors {
        Neighbors(north: moveY(cell, 1), south: moveY(cell, -1), east: moveX(cell, 1), west: moveX(cell, -1),
                  northEast: moveY(moveX(cell, 1), 1), northWest: moveY(moveX(cell, -1), 1),
                  southEast: moveY(moveX(cell, 1), -1), southWest: moveY(moveX(cell, -1), -1))
    }

    /// The coarsest step whose cells still cover `radius` meters, one or two steps coarser near the poles
    /// (`geohashEstimateStepsByRadius`).
    static func estimateStep(radius: Double, latitude: Double) -> UInt8 {
        if radius == 0 { return maxStep }
        var range = radius
        var step = 1
        while range < mercatorMax {
            range *= 2
            step += 1
        }
        step -= 2
        if latitude > 66 || latitude < -66 {
            step -= 1
            if latitude > 80 || latitude < -80 { step -= 1 }
        }
        return UInt8(Swift.min(Swift.max(step, 1), Int(maxStep)))
    }

    // MARK: Distances

    /// The haversine great-circle distance in meters on Redis's sphere. As in redis-server 7.0.15, two
    /// positions on one meridian (the longitude term exactly 0) take the shortcut along the meridian, whose
    /// last bits differ from the full formula's.
    public static func distance(
        fromLongitude longitude1: Double, latitude latitude1: Double,
        toLongitude longitude2: Double, latitude latitude2: Double
    ) -> Double {
        let longitude1r = longitude1 * degreesToRadians
        let longitude2r = longitude2 * degreesToRadians
        let v = sin((longitude2r - longitude1r) / 2)
        if v == 0 { return meridianDistance(fromLatitude: latitude1, toLatitude: latitude2) }
        let latitude1r = latitude1 * degreesToRadians
        let latitude2r = latitude2 * degreesToRadians
        let u = sin((latitude2r - latitude1r) / 2)
        let a = u * u + cos(latitude1r) * cos(latitude2r) * v * v
        return 2.0 * earthRadius * asin(a.squareRoot())
    }

    /// The distance between two latitudes along a meridian (`geohashGetLatDistance`).
    public static func meridianDistance(fromLatitude latitude1: Double, toLatitude latitude2: Double) -> Double {
        earthRadius * abs(latitude2 * degreesToRadians - latitude1 * degreesToRadians)
    }
}

/// The area a GEO search covers: a circle or an axis-aligned box (in meters along the parallel and the
/// meridian) around a center, with the unit its sizes were given in.
public struct GeoShape: Sendable {
    public enum Kind: Sendable {
        /// A circle of this radius.
        case radius(Double)
        /// A box this wide (east–west) and high (north–south).
        case box(width: Double, height: Double)
    }

    public var longitude: Double
    public var latitude: Double
    public var kind: Kind
    /// Meters per unit of the sizes (1, 1000, 0.3048 or 1609.34).
    public var metersPerUnit: Double

    public init(longitude: Double, latitude: Double, kind: Kind, metersPerUnit: Double) {
        self.longitude = longitude
        self.latitude = latitude
        self.kind = kind
        self.metersPerUnit = metersPerUnit
    }

    /// The distance from the center in meters when the position lies inside the shape.
    public func distanceIfInside(longitude: Double, latitude: Double) -> Double? {
        switch kind {
        case .radius(let radius):
            let distance = GeoHash.distance(fromLongitude: self.longitude, latitude: self.latitude,
                                            toLongitude: longitude, latitude: latitude)
            return distance > radius * metersPerUnit ? nil : distance
        case .box(let width, let height):
            // The latitude first (cheaper), then the distance along the point's parallel.
            let widthMeters = width * metersPerUnit, heightMeters = height * metersPerUnit
            if GeoHash.meridianDistance(fromLatitude: latitude, toLatitude: self.latitude) > heightMeters / 2 { return nil }
            let alongParallel = GeoHash.distance(fromLongitude: longitude, latitude: latitude,
                                                 toLongitude: self.longitude, latitude: latitude)
            if alongParallel > widthMeters / 2 { return nil }
            return GeoHash.distance(fromLongitude: self.longitude, latitude: self.latitude,
                                    toLongitude: longitude, latitude: latitude)
        }
    }

    /// The shape's bounding box in degrees: min longitude, min latitude, max longitude, max latitude
    /// (`geohashBoundingBox`).
    func boundingBox() -> (minLongitude: Double, minLatitude: Double, maxLongitude: Double, maxLatitude: Double) {
        let height: Double, width: Double
        switch kind {
        case .radius(let radius):
            height = metersPerUnit * radius
            width = metersPerUnit * radius
        case .box(let boxWidth, let boxHeight):
            height = metersPerUnit * (boxHeight / 2)
            width = metersPerUnit * (boxWidth / 2)
        }
        let radiansToDegrees = { (radians: Double) in radians / GeoHash.degreesToRadians }
        let latitudeDelta = radiansToDegrees(height / GeoHash.earthRadius)
        let longitudeDeltaTop = radiansToDegrees(
            width / GeoHash.earthRadius / cos((latitude + latitudeDelta) * GeoHash.degreesToRadians))
        let longitudeDeltaBottom = radiansToDegrees(
            width / GeoHash.earthRadius / cos((latitude - latitudeDelta) * GeoHash.degreesToRadians))
        let southern = latitude < 0
        return (southern ? longitude - longitudeDeltaBottom : longitude - longitudeDeltaTop,
                latitude - latitudeDelta,
                southern ? longitude + longitudeDeltaBottom : longitude + longitudeDeltaTop,
                latitude + latitudeDelta)
    }

    /// The nine cells to scan, in Redis's order (the center's cell, then N, S, E, W, NE, NW, SE, SW), with
    /// the ones the shape cannot reach set to "none" (`geohashCalculateAreasByShapeWGS84`).
    func searchCells() -> [GeoHash.Cell] {
        let bounds = boundingBox()
        let radiusMeters: Double
        switch kind {
        case .radius(let radius): radiusMeters = radius * metersPerUnit
        case .box(let width, let height): radiusMeters = (width / 2 * (width / 2) + height / 2 * (height / 2)).squareRoot() * metersPerUnit
        }
        var step = GeoHash.estimateStep(radius: radiusMeters, latitude: latitude)
        var cell = GeoHash.encode(longitude: longitude, latitude: latitude, step: step) ?? .none
        var around = GeoHash.neighbors(of: cell)
        var area = GeoHash.decode(cell)

        // A step can be too coarse at the edges of the covered area: one finer is taken when a side
        // neighbour does not reach the bounding box.
        var decrease = false
        if let north = GeoHash.decode(around.north), north.latitude.max < bounds.maxLatitude { decrease = true }
        if let south = GeoHash.decode(around.south), south.latitude.min > bounds.minLatitude { decrease = true }
        if let east = GeoHash.decode(around.east), east.longitude.max < bounds.maxLongitude { decrease = true }
        if let west = GeoHash.decode(around.west), west.longitude.min > bounds.minLongitude { decrease = true }
        if step > 1 && decrease {
            step -= 1
            cell = GeoHash.encode(longitude: longitude, latitude: latitude, step: step) ?? .none
            around = GeoHash.neighbors(of: cell)
            area = GeoHash.decode(cell)
        }

        if step >= 2, let area {
            if area.latitude.min < bounds.minLatitude {
                around.south = .none; around.southWest = .none; around.southEast = .none
            }
            if area.latitude.max > bounds.maxLatitude {
                around.north = .none; around.northEast = .none; around.northWest = .none
            }
            if area.longitude.min < bounds.minLongitude {
                around.west = .none; around.southWest = .none; around.northWest = .none
            }
            if area.longitude.max > bounds.maxLongitude {
                around.east = .none; around.southEast = .none; around.northEast = .none
            }
        }
        return [cell, around.north, around.south, around.east, around.west,
                around.northEast, around.northWest, around.southEast, around.southWest]
    }
}

/// A member found by a GEO search.
public struct GeoPoint: Sendable {
    public var member: Bytes
    public var score: Double
    public var longitude: Double
    public var latitude: Double
    /// Meters from the shape's center.
    public var distance: Double
}

extension SortedSetValue {
    /// The members inside `shape`, in Redis's order: cell by cell (the center's first), by score within a
    /// cell. A cell equal to the one scanned just before is skipped, but one seen earlier is scanned again
    /// (for huge areas Redis can then answer a member twice, and so does this). With `limit`, the scan
    /// stops once that many were found (ANY).
    /// - Complexity: O(k log n) for the k members inside the scanned cells.
    public func geoMembers(in shape: GeoShape, limit: Int? = nil) -> [GeoPoint] {
        var found: [GeoPoint] = []
        let cells = shape.searchCells()
        var lastScanned: Int? = nil
        for (index, cell) in cells.enumerated() where !cell.isNone {
            if let last = lastScanned, last != 0, cells[last] == cell { continue }
            if let limit, !found.isEmpty, found.count >= limit { break }
            let scores = cell.scoreRange
            let ranks = ranks(in: ScoreRange(min: scores.min, max: scores.max, minExclusive: false, maxExclusive: true))
            if !ranks.isEmpty {
                forEach(from: ranks.lowerBound) { element in
                    guard element.score < scores.max else { return false }
                    let position = GeoHash.position(ofScore: element.score)
                    if let distance = shape.distanceIfInside(longitude: position.longitude, latitude: position.latitude) {
                        found.append(GeoPoint(member: element.member, score: element.score, longitude: position.longitude,
                                              latitude: position.latitude, distance: distance))
                    }
                    if let limit, found.count >= limit { return false }
                    return true
                }
            }
            lastScanned = index
        }
        return found
    }
}
