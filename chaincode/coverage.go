package chaincode

import "math"

// The contract decides coverage itself, from the bidder's registered site and radius, in
// integer arithmetic only: endorsers on different machines (amd64, arm64) must compute the
// same answer bit for bit, and Go may fuse floating-point operations into FMA on arm64, so
// no floating-point result may decide. The inputs arrive as JSON numbers (float64); each is
// turned into an integer by one multiplication by a power of ten and a rounding, which
// IEEE 754 defines exactly on every platform (no addition follows, so nothing can fuse).
//
// The geometry is equirectangular on the mean latitude: the north-south and the
// east-west offsets in microdegrees, the latter scaled by a fixed-point cosine, compared
// squared against the radius in microdegrees of latitude. Against geo.Distance (haversine,
// the descheduler's own geometry) it agrees outside a band of CoverageTolerance of the
// radius plus CoverageToleranceM around the border, for radii up to 100 km below 80°
// latitude (TestCoverageAgreesWithGeo; measured over 2·10⁶ points within 1 % of the border:
// at most 0.021 % of radii from 1 km, 0.21 m below); beyond that the contract's answer is
// the one that counts.

// CoverageTolerance and CoverageToleranceM bound the band around a radius within which the
// contract's coverage may differ from geo's: relative (the cosine table, the
// equirectangular approximation), and absolute (rounding to microdegrees, 0.11 m).
const (
	CoverageTolerance  = 0.002
	CoverageToleranceM = 0.25
)

// microdegrees is a coordinate in millionths of a degree.
type microdegrees = int64

const (
	microPerDegree = 1_000_000
	// mmPerDegree is one degree of a great circle on the sphere of geo.EarthRadiusM
	// (6 371 008.8 m), in millimetres.
	mmPerDegree = 111_195_080
	// cosShift is the fixed point of cosTable: cos = cosTable[d] / 2^30.
	cosShift = 30
)

// cosTable is cos(d°) for d = 0..90 in Q30 fixed point (math.Cos rounded, checked by a test).
var cosTable = [91]int64{
	1073741824, 1073578288, 1073087729, 1072270298, 1071126243, 1069655912, 1067859754, 1065738315,
	1063292242, 1060522280, 1057429273, 1054014162, 1050277989, 1046221891, 1041847103, 1037154959,
	1032146887, 1026824413, 1021189159, 1015242840, 1008987269, 1002424350, 995556083, 988384560,
	980911966, 973140576, 965072759, 956710970, 948057759, 939115760, 929887697, 920376381,
	910584710, 900515665, 890172315, 879557810, 868675383, 857528349, 846120104, 834454122,
	822533958, 810363241, 797945680, 785285058, 772385229, 759250125, 745883746, 732290163,
	718473518, 704438018, 690187940, 675727625, 661061475, 646193961, 631129609, 615873009,
	600428808, 584801711, 568996477, 553017922, 536870912, 520560366, 504091252, 487468587,
	470697435, 453782903, 436730145, 419544355, 402230767, 384794656, 367241333, 349576144,
	331804471, 313931728, 295963357, 277904834, 259761657, 241539355, 223243478, 204879599,
	186453311, 167970228, 149435979, 130856211, 112236583, 93582766, 74900443, 56195305,
	37473049, 18739379, 0,
}

// toMicrodegrees rounds a validated coordinate (|deg| ≤ 180) to microdegrees.
func toMicrodegrees(deg float64) microdegrees { return int64(math.Round(deg * microPerDegree)) }

// cosQ30 is cos(a) for |a| ≤ 90° in microdegrees, linearly interpolated between whole
// degrees of cosTable (error below 4e-5).
func cosQ30(a microdegrees) int64 {
	if a < 0 {
		a = -a
	}
	a = min(a, 90*microPerDegree)
	d, frac := a/microPerDegree, a%microPerDegree
	if d == 90 {
		return cosTable[90]
	}
	// |diff| < 2^25 and frac < 2^20: the product stays far below 2^63.
	return cosTable[d] + (cosTable[d+1]-cosTable[d])*frac/microPerDegree
}

// covers reports whether client lies within radiusM metres of site. Every quantity is
// bounded by validation (|lat| ≤ 90°, |lon| ≤ 180°, radius ≤ MaxCoverageRadiusM), so each
// square is below 2^57 and their sum cannot overflow an int64.
func covers(site Location, radiusM float64, client Location) bool {
	lat1, lon1 := toMicrodegrees(site.Lat), toMicrodegrees(site.Lon)
	lat2, lon2 := toMicrodegrees(client.Lat), toMicrodegrees(client.Lon)
	dy := lat2 - lat1
	dx := lon2 - lon1
	// The short way round the antimeridian.
	if dx > 180*microPerDegree {
		dx -= 360 * microPerDegree
	} else if dx < -180*microPerDegree {
		dx += 360 * microPerDegree
	}
	// |dx| ≤ 1.8e8 < 2^28 and the cosine < 2^31: the product is below 2^59.
	dx = dx * cosQ30((lat1+lat2)/2) >> cosShift
	// The radius in millimetres (≤ 2.1e10), then in microdegrees of a great circle.
	radiusMM := int64(math.Round(radiusM * 1000))
	r := radiusMM * microPerDegree / mmPerDegree
	return dx*dx+dy*dy <= r*r
}
