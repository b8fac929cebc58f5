// The Express half of the shared-session example: express-session with
// connect-session-sequelize on the same SQLite file (or DATABASE_URL) and the same secret as
// `cargo run --example shared_with_express --features express`. Sign in on one, and the other
// knows you: both read the `connect.sid` cookie (cookies are per host, not per port) and the
// same `ConnectSessions` table.
//
// Run with: cd examples/express && npm ci && node server.js   (http://127.0.0.1:3001)
'use strict'

const express = require('express')
const session = require('express-session')
const { Sequelize, DataTypes } = require('sequelize')
const SequelizeStore = require('connect-session-sequelize')(session.Store)

const url = process.env.DATABASE_URL || 'sqlite://../../shared.db'
const db = url.startsWith('sqlite://')
  ? new Sequelize({ dialect: 'sqlite', storage: url.slice('sqlite://'.length), logging: false })
  : new Sequelize(url, { logging: false })
// The model of the original sequelstore-connect package; Sequelize names its table ConnectSessions.
db.define('ConnectSession', {
  sid: { type: DataTypes.STRING, primaryKey: true },
  expires: DataTypes.DATE,
  data: DataTypes.TEXT
})
const store = new SequelizeStore({ db, table: 'ConnectSession' })

const app = express()
app.use(express.urlencoded({ extended: false }))
app.use(session({
  secret: (process.env.SESSION_SECRETS || 'change me').split(','),
  store,
  resave: false,
  saveUninitialized: false,
  cookie: { maxAge: 60 * 60 * 1000, httpOnly: true, sameSite: 'lax' }
}))

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

app.get('/', async (req, res) => {
  const live = await store.length()
  if (req.session.user) {
    req.session.visits = (req.session.visits || 0) + 1
    res.send(`<h1>Express</h1><p>Signed in as ${escape(req.session.user)}, visit ${req.session.visits}.</p>
      <p>Rows in the sessions table: ${live}.</p>
      <form method="post" action="/logout"><button>Sign out</button></form>`)
  } else {
    res.send(`<h1>Express</h1><p>Not signed in. Rows in the sessions table: ${live}.</p>
      <form method="post" action="/login"><input name="name" placeholder="any name"><button>Sign in</button></form>`)
  }
})

app.post('/login', (req, res, next) => {
  const name = (req.body.name || '').trim()
  if (!name) return res.status(400).send('a name, please')
  req.session.regenerate((err) => {
    if (err) return next(err)
    req.session.user = name
    req.session.visits = 0
    res.redirect(303, '/')
  })
})

app.post('/logout', (req, res, next) => {
  req.session.destroy((err) => (err ? next(err) : res.clearCookie('connect.sid').redirect(303, '/')))
})

store.sync().then(() => {
  const port = Number(process.env.PORT || 3001)
  app.listen(port, '127.0.0.1', () => console.log(`Express on http://127.0.0.1:${port}`))
})
