// A real express-session app for sequelstore's cookie interop tests: express-session 1.19.0
// with connect-session-sequelize on the test database (see db.js for the environment), secrets
// from SESSION_SECRETS (comma-separated; the first signs), listening on 127.0.0.1:PORT.
//   GET /login/:name  regenerates the session and stores `user`
//   GET /whoami       `user:<name>`, or `user:-` for a fresh session
//   GET /logout       destroys the session
//   GET /visit        counts visits in the session (a change, so the session is saved)
// MAX_AGE_MS sets cookie.maxAge (default one hour); "none" leaves it unset (browser-session
// cookies).
'use strict'

const express = require('express')
const session = require('express-session')
const SequelizeStore = require('connect-session-sequelize')(session.Store)
const { connect, defineModel } = require('./db')

const db = connect()
defineModel(db)
const store = new SequelizeStore({ db, table: 'ConnectSession', checkExpirationInterval: 0 })

const app = express()
app.use(session({
  secret: process.env.SESSION_SECRETS.split(','),
  store,
  resave: false,
  saveUninitialized: false,
  cookie: process.env.MAX_AGE_MS === 'none'
    ? {}
    : { maxAge: Number(process.env.MAX_AGE_MS || 3600 * 1000) }
}))
app.get('/login/:name', (req, res, next) => {
  req.session.regenerate((err) => {
    if (err) return next(err)
    req.session.user = req.params.name
    res.send(`user:${req.params.name}`)
  })
})
app.get('/whoami', (req, res) => res.send(`user:${req.session.user || '-'}`))
app.get('/visit', (req, res) => {
  req.session.visits = (req.session.visits || 0) + 1
  res.send(`visits:${req.session.visits}`)
})
app.get('/logout', (req, res, next) => req.session.destroy((err) => (err ? next(err) : res.send('bye'))))

store.sync().then(() => {
  app.listen(Number(process.env.PORT), '127.0.0.1', () => process.stdout.write('listening\n'))
})
