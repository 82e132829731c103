// Fixed-rate HTTP load with loadtest's API; prints one JSON object on stdout.
//
// Usage: node loadgen.mjs URL RPS SECONDS
// $LOADGEN_AUTHORIZATION, when set, is sent as the Authorization header.
//
// loadtest fires requests from a drift-corrected timer and opens another
// connection whenever all are busy, so a slow answer never delays the next
// request (open loop, like wrk2). It records latency in whole milliseconds.
import {loadTest} from 'loadtest'

const [url, rps, seconds] = process.argv.slice(2)
if (!url || !rps || !seconds) {
	console.error('usage: node loadgen.mjs URL RPS SECONDS')
	process.exit(2)
}

const result = await loadTest({
	url,
	requestsPerSecond: Number(rps),
	maxSeconds: Number(seconds),
	agentKeepAlive: true,
	timeout: 10000,
	quiet: true,
	headers: process.env.LOADGEN_AUTHORIZATION
		? {authorization: process.env.LOADGEN_AUTHORIZATION}
		: {},
})

process.stdout.write(JSON.stringify({
	tool: 'loadtest',
	targetRps: Number(rps),
	seconds: Number(seconds),
	totalRequests: result.totalRequests,
	totalErrors: result.totalErrors,
	errorCodes: result.errorCodes,
	elapsedSeconds: result.elapsedSeconds,
	effectiveRps: result.effectiveRps,
	clients: result.clients,
	meanLatencyMs: result.meanLatencyMs,
	maxLatencyMs: result.maxLatencyMs,
	percentiles: result.percentiles,
	histogramMs: result.histogramMs,
}) + '\n')
