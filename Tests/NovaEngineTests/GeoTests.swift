import Testing

import NovaEngine

@Suite("Geohash, GEO searches and Redis's partial quicksort")
struct GeoTests {
    // Reference values from redis-server 7.0.15 (GEOADD Sicily 13.361389 38.115556 Palermo …).
    @Test func scoresPositionsAndHashesAreRedis() {
        let palermo = GeoHash.score(longitude: 13.361389, latitude: 38.115556)
        let catania = GeoHash.score(longitude: 15.087269, latitude: 37.502669)
        #expect(palermo == 3479099956230698)
        #expect(catania == 3479447370796909)
        let position = GeoHash.position(ofScore: 3479099956230698)
        #expect(position.longitude == 13.36138933897018433)
        #expect(position.latitude == 38.11555639549629859)
        #expect(GeoHash.standardHash(ofScore: 3479099956230698) == Array("sqc8b49rny0".utf8))
        #expect(GeoHash.standardHash(ofScore: 3479447370796909) == Array("sqdtr74hyu0".utf8))
    }

    @Test func positionsOutsideTheIndexHaveNoScore() {
        #expect(GeoHash.score(longitude: 180.0000001, latitude: 0) == nil)
        #expect(GeoHash.score(longitude: 0, latitude: 85.05112879) == nil)
        #expect(GeoHash.score(longitude: -180, latitude: -85.05112878) == 0)
    }

    @Test func anyScoreDecodesAsX86ConversionsDo() {
        // Scores that never were geohashes still decode (GEOPOS on any sorted set), clamped to the index.
        for score in [-1.0, 1.5, .infinity, -.infinity, 1e300, 9007199254740994] {
            let position = GeoHash.position(ofScore: score)
            #expect(abs(position.longitude) <= 180 && abs(position.latitude) <= GeoHash.latitudeLimit)
        }
        #expect(GeoHash.position(ofScore: .infinity) == GeoHash.position(ofScore: 0))
    }

    @Test func distancesAreRedisHaversine() {
        let palermo = GeoHash.position(ofScore: 3479099956230698)
        let catania = GeoHash.position(ofScore: 3479447370796909)
        let meters = GeoHash.distance(fromLongitude: palermo.longitude, latitude: palermo.latitude,
                                      toLongitude: catania.longitude, latitude: catania.latitude)
        #expect(abs(meters - 166274.1516) < 0.0001)  // GEODIST Sicily Palermo Catania on redis-server
        // On one meridian Redis 7.0.15 measures along it; the full formula differs in the last bits.
        let alongMeridian = GeoHash.distance(fromLongitude: 180, latitude: 84.9, toLongitude: 180, latitude: -85.05112751263942528)
        #expect(alongMeridian == GeoHash.meridianDistance(fromLatitude: 84.9, toLatitude: -85.05112751263942528))
        #expect(alongMeridian.bitPattern == 0x4172_06FF_B181_4443)
    }

    @Test func searchesFindWhatABruteForceScanFinds() {
        var zset = SortedSetValue()
        var random = SystemRandomNumberGenerator()
        var positions: [(Double, Double)] = []
        for index in 0..<3000 {
            let longitude = Double.random(in: 12...14, using: &random)
            let latitude = Double.random(in: 41...43, using: &random)
            let score = GeoHash.score(longitude: longitude, latitude: latitude)!
            zset.set(Bytes("m\(index)"), score: score, limits: EncodingLimits())
            positions.append(GeoHash.position(ofScore: score))
        }
        for _ in 0..<50 {
            let center = (Double.random(in: 12...14, using: &random), Double.random(in: 41...43, using: &random))
            for kind in [GeoShape.Kind.radius(Double.random(in: 1...80, using: &random)),
                         .box(width: Double.random(in: 1...150, using: &random), height: Double.random(in: 1...150, using: &random))] {
                let shape = GeoShape(longitude: center.0, latitude: center.1, kind: kind, metersPerUnit: 1000)
                let found = Set(zset.geoMembers(in: shape).map(\.member))
                let expected = Set(positions.indices.filter {
                    shape.distanceIfInside(longitude: positions[$0].0, latitude: positions[$0].1) != nil
                }.map { Bytes("m\($0)") })
                #expect(found == expected)
            }
        }
        let limited = zset.geoMembers(in: GeoShape(longitude: 13, latitude: 42, kind: .radius(500), metersPerUnit: 1000), limit: 7)
        #expect(limited.count == 7)
    }

    @Test func partialQuickSortPlacesTheWantedRange() {
        var random = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            let values = (0..<Int.random(in: 1...200, using: &random)).map { _ in Int.random(in: 0...20, using: &random) }
            let lower = Int.random(in: 0..<values.count, using: &random)
            let upper = Int.random(in: lower..<values.count, using: &random)
            var sorted = values
            PartialQuickSort.sort(&sorted, keeping: lower, through: upper) { $0 < $1 ? -1 : ($0 == $1 ? 0 : 1) }
            #expect(Array(sorted[lower...upper]) == Array(values.sorted()[lower...upper]))
            #expect(sorted.sorted() == values.sorted())
        }
    }

    @Test func partialQuickSortOrdersTiesAsRedis() {
        // Elements equal by key keep the order Redis's pqsort gives them (checked against redis-server by
        // the GEO differential); here: deterministic, and a full range is fully sorted by key.
        let keys = [3, 1, 3, 2, 1, 3, 2, 2, 1, 3, 1, 2, 3, 1, 2, 3, 3, 1, 2, 1]
        var first = Array(keys.enumerated())
        var second = first
        PartialQuickSort.sort(&first, keeping: 0, through: 4) { a, b in a.element < b.element ? -1 : (a.element == b.element ? 0 : 1) }
        PartialQuickSort.sort(&second, keeping: 0, through: 4) { a, b in a.element < b.element ? -1 : (a.element == b.element ? 0 : 1) }
        #expect(first.map(\.offset) == second.map(\.offset))
        #expect(first.prefix(5).allSatisfy { $0.element == 1 })
    }
}
