// Sends logs to logmon's Loki push endpoint with winston-loki (npm), the way a Node service
// using it would: winston -> LokiTransport -> batched pushes.
//
// usage: node winston_loki.js BASE_URL SERVICE json|protobuf
// Prints one JSON line {"contentType", "failed"}; exit 1 when a push failed or when the wanted
// encoding is not the one the transport used (winston-loki silently falls back to JSON when its
// snappy binding cannot load, which would make a protobuf test prove nothing).
const path = require('path')
const modules = process.env.LOGMON_NODE_MODULES || path.join(__dirname, '../../.data/node/node_modules')
const winston = require(path.join(modules, 'winston'))
const LokiTransport = require(path.join(modules, 'winston-loki'))

const [base, service, mode] = process.argv.slice(2)
let failed = 0
const transport = new LokiTransport({
  host: base,
  labels: { app: service, env: 'test' },
  json: mode === 'json',
  interval: 1,
  timeout: 10000,
  onConnectionError: (err) => { failed += 1; console.error(String(err)) }
})
const logger = winston.createLogger({ level: 'debug', transports: [transport] })

logger.debug('cache warm')
logger.info('GET /cart', { route: '/cart' })
logger.warn('slow payment provider')
for (let i = 0; i < 5; i++) logger.error('payment failed', { attempt: i })

transport.flush().then(async () => {
  await transport.close()
  const contentType = transport.batcher.contentType
  const want = mode === 'json' ? 'application/json' : 'application/x-protobuf'
  console.log(JSON.stringify({ contentType, failed }))
  process.exit(failed || contentType !== want ? 1 : 0)
})
