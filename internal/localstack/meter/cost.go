package meter

// Prices are AWS list prices in us-east-1 (US dollars, without free tiers), the ones
// docs/cost.md states with their sources and date. One place, so the doc's generated
// tables and its text use the same figures.
type Prices struct {
	LambdaRequest  float64 // per request
	LambdaGBSecond float64 // arm64, first tier
	Transition     float64 // Step Functions Standard, per state transition
	WRU, RRU       float64 // DynamoDB on-demand, per request unit
	HTTPRequest    float64 // API Gateway HTTP API, per request (up to 512 KB)
	Event          float64 // EventBridge custom event, per 64 KB chunk
	S3Tier1        float64 // S3 Standard PUT, COPY, POST, LIST, per request
	S3Tier2        float64 // S3 Standard GET and others, per request
	LogGB          float64 // CloudWatch Logs ingestion, per GB (2^30 bytes)
	Trace          float64 // X-Ray, per trace recorded
}

// USEast1 are the prices docs/cost.md uses.
var USEast1 = Prices{
	LambdaRequest:  0.20 / 1e6,
	LambdaGBSecond: 0.0000133334,
	Transition:     0.025 / 1000,
	WRU:            0.625 / 1e6,
	RRU:            0.125 / 1e6,
	HTTPRequest:    1.00 / 1e6,
	Event:          1.00 / 1e6,
	S3Tier1:        0.005 / 1000,
	S3Tier2:        0.0004 / 1000,
	LogGB:          0.50,
	Trace:          5.00 / 1e6,
}

// LogEventOverhead is what CloudWatch Logs adds to each log event's size when it
// meters ingestion (26 bytes); PlatformLogBytes is what Lambda itself writes per
// invocation in the JSON log format (platform.start and platform.report, about 400
// bytes with their overhead), which no function prints and the local stack does not
// emulate.
const (
	LogEventOverhead = 26
	PlatformLogBytes = 400
)

// Cost is a run's price, by line.
type Cost struct {
	Lambda, StepFunctions, DynamoDB, APIGateway, EventBridge, S3, Logs, XRay float64
}

// Total sums the lines.
func (c Cost) Total() float64 {
	return c.Lambda + c.StepFunctions + c.DynamoDB + c.APIGateway + c.EventBridge + c.S3 + c.Logs + c.XRay
}

// Scale multiplies every line by n.
func (c Cost) Scale(n float64) Cost {
	return Cost{c.Lambda * n, c.StepFunctions * n, c.DynamoDB * n, c.APIGateway * n, c.EventBridge * n, c.S3 * n, c.Logs * n, c.XRay * n}
}

// Plus adds o line by line.
func (c Cost) Plus(o Cost) Cost {
	return Cost{c.Lambda + o.Lambda, c.StepFunctions + o.StepFunctions, c.DynamoDB + o.DynamoDB, c.APIGateway + o.APIGateway,
		c.EventBridge + o.EventBridge, c.S3 + o.S3, c.Logs + o.Logs, c.XRay + o.XRay}
}

// Entries are how a run entered the system: HTTP API requests (API Gateway bills
// each) and scheduled invocations.
type Entries struct{ HTTP, Scheduled int }

// Price prices a run that entered through entries, whose functions printed logBytes
// (CloudWatch's per-event overhead included). X-Ray is left out: what it bills depends
// on the request rate (SampledTraces), not on one run.
func (p Prices) Price(r *Run, entries Entries, logBytes int64) Cost {
	ddb := r.Service("dynamodb").Total()
	ev := r.Service("events").Total()
	s3 := r.S3()
	logs := logBytes + int64(r.Invocations())*PlatformLogBytes
	return Cost{
		Lambda:        float64(r.Invocations())*p.LambdaRequest + r.GBSeconds()*p.LambdaGBSecond,
		StepFunctions: float64(r.Transitions()) * p.Transition,
		DynamoDB:      ddb.WRU*p.WRU + ddb.RRU*p.RRU,
		APIGateway:    float64(entries.HTTP) * p.HTTPRequest,
		EventBridge:   float64(ev.Chunks) * p.Event,
		S3:            float64(s3["tier1"])*p.S3Tier1 + float64(s3["tier2"])*p.S3Tier2,
		Logs:          float64(logs) / (1 << 30) * p.LogGB,
	}
}

// SecondsPerMonth is a 730-hour month.
const SecondsPerMonth = 730 * 3600

// SampledTraces is how many of perMonth requests X-Ray records a month when they
// arrive evenly under the default sampling rule Lambda and Step Functions apply: the
// first request each second and 5% of the others.
func SampledTraces(perMonth float64) float64 {
	rate := perMonth / SecondsPerMonth
	if rate <= 1 {
		return perMonth
	}
	return (1 + 0.05*(rate-1)) * SecondsPerMonth
}
