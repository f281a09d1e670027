// Drives a real Node client library against a live Switchyard, flushes, and exits.
//
// Reads a plan as JSON on stdin:
//   {"library": "analytics-node" | "rudder-sdk-node", "host": "http://127.0.0.1:PORT",
//    "writeKey": "...", "skewMs": 0, "calls": [["track", {...}], ...]}
// Any value written {"$date": "ISO"} is passed to the library as a Date. With skewMs the
// process's clock runs that far ahead (Date is replaced before the library loads), as on a
// server whose clock is wrong. Prints one JSON line: {"errors": [...], "statuses": [...]}.
'use strict'

const fs = require('fs')

const plan = JSON.parse(fs.readFileSync(0, 'utf8'))

if (plan.skewMs) {
  const RealDate = Date
  const skew = plan.skewMs
  class SkewedDate extends RealDate {
    constructor(...args) {
      if (args.length === 0) super(RealDate.now() + skew)
      else super(...args)
    }
    static now() {
      return RealDate.now() + skew
    }
  }
  globalThis.Date = SkewedDate
}

function revive(value) {
  if (Array.isArray(value)) return value.map(revive)
  if (value && typeof value === 'object') {
    if (typeof value.$date === 'string') return new Date(value.$date)
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, revive(v)]))
  }
  return value
}

async function analyticsNode() {
  const { Analytics } = require('@segment/analytics-node')
  const errors = []
  const statuses = []
  const analytics = new Analytics({
    writeKey: plan.writeKey,
    host: plan.host,
    flushInterval: 100,
    maxRetries: 3,
    httpRequestTimeout: 10000,
  })
  analytics.on('error', (err) => errors.push(String((err && (err.reason || err.code)) || err)))
  analytics.on('http_response', (response) => statuses.push(response.status))
  for (const [method, args] of plan.calls) analytics[method](revive(args))
  await analytics.closeAndFlush({ timeout: 60000 })
  return { errors, statuses }
}

async function rudderNode() {
  const Analytics = require('@rudderstack/rudder-sdk-node')
  const errors = []
  const client = new Analytics(plan.writeKey, {
    dataPlaneUrl: plan.host,
    flushAt: 100,
    flushInterval: 100,
    retryCount: 3,
    logLevel: 'error',
    errorHandler: (err) => errors.push(String(err && (err.response ? err.response.status : err.message))),
  })
  for (const [method, args] of plan.calls) client[method](revive(args))
  // The first call flushes at once; the rest wait in the queue until flushed.
  while (client.queue.length > 0) await client.flush()
  if (client.pendingFlush) await client.pendingFlush
  return { errors, statuses: [] }
}

const libraries = { 'analytics-node': analyticsNode, 'rudder-sdk-node': rudderNode }

libraries[plan.library]()
  .then((result) => {
    process.stdout.write(JSON.stringify(result) + '\n')
    process.exit(0)
  })
  .catch((err) => {
    process.stderr.write(String((err && err.stack) || err) + '\n')
    process.exit(1)
  })
