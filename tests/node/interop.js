// The Node side of sequelstore's interop tests. Runs a list of operations, given as JSON in
// argv[2], against a sessions table through Sequelize 6 and connect-session-sequelize (the
// store express-session uses), and prints their results as JSON, one array.
//
// Environment: DIALECT (sqlite | postgres | mysql), DB_URL (postgres:// or mysql:// URL),
// STORAGE (SQLite file), PG_SCHEMA (a search_path), TABLE (ConnectSessions: Sequelize's plural
// name; ConnectSession: freezeTableName), SEQUELIZE_TZ (Sequelize's timezone, default +00:00).
'use strict'

const { connect, defineModel } = require('./db')
const session = require('express-session')
const signature = require('cookie-signature')
const SequelizeStore = require('connect-session-sequelize')(session.Store)

function expressSession (store, sid, data) {
  const req = { sessionID: sid, sessionStore: store }
  return store.createSession(req, data)
}

async function run (store, model, db, op) {
  switch (op.op) {
    case 'sync':
      await store.sync()
      return model.getTableName()
    case 'set':
      // As express-session hands it to the store: a Session whose cookie is a Cookie.
      await store.set(op.sid, expressSession(store, op.sid, op.session))
      return true
    case 'get': {
      const data = await store.get(op.sid)
      if (data === null) return null
      // What express-session does with a loaded session; it throws without a cookie object.
      const loaded = expressSession(store, op.sid, JSON.parse(JSON.stringify(data)))
      return { data, cookieExpires: loaded.cookie.expires ? loaded.cookie.expires.toISOString() : null }
    }
    case 'touch':
      await store.touch(op.sid, expressSession(store, op.sid, op.session))
      return true
    case 'destroy':
      await store.destroy(op.sid)
      return true
    case 'clearExpired':
      await store.clearExpiredSessions()
      return true
    case 'length':
      return await store.length()
    case 'row': {
      const row = await model.findOne({ where: { sid: op.sid } })
      if (!row) return null
      // The text SQLite holds, as stored.
      const [[text]] = process.env.DIALECT === 'sqlite'
        ? await db.query(
          `SELECT expires FROM ${db.getQueryInterface().quoteIdentifier(model.getTableName())} WHERE sid = ?`,
          { replacements: [op.sid] }
        )
        : [[undefined]]
      return {
        expires: row.expires === null ? null : new Date(row.expires).toISOString(),
        expiresText: text ? text.expires : undefined,
        createdAt: row.createdAt && new Date(row.createdAt).toISOString(),
        updatedAt: row.updatedAt && new Date(row.updatedAt).toISOString(),
        data: row.data
      }
    }
    case 'sign':
      return 's:' + signature.sign(op.value, op.secret)
    case 'unsign': {
      const value = op.value.startsWith('s:') ? op.value.slice(2) : op.value
      for (const secret of op.secrets) {
        const sid = signature.unsign(value, secret)
        if (sid !== false) return sid
      }
      return false
    }
    default:
      throw new Error(`unknown op ${op.op}`)
  }
}

async function main () {
  const ops = JSON.parse(process.argv[2] || '[]')
  const db = connect()
  const model = defineModel(db)
  const store = new SequelizeStore({ db, table: 'ConnectSession', checkExpirationInterval: 0 })
  const results = []
  try {
    for (const op of ops) results.push(await run(store, model, db, op))
  } finally {
    await db.close()
  }
  process.stdout.write(JSON.stringify(results) + '\n')
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`)
  process.exit(1)
})
