// Opening the test database and defining the original package's ConnectSession model, shared by
// interop.js and express_server.js. Environment: DIALECT (sqlite | postgres | mysql), DB_URL,
// STORAGE (SQLite file), PG_SCHEMA, TABLE, SEQUELIZE_TZ; see interop.js.
'use strict'

const { Sequelize, DataTypes } = require('sequelize')

function connect () {
  const options = { logging: false, timezone: process.env.SEQUELIZE_TZ || '+00:00' }
  switch (process.env.DIALECT) {
    case 'sqlite':
      return new Sequelize({ ...options, dialect: 'sqlite', storage: process.env.STORAGE })
    case 'postgres':
      return new Sequelize(process.env.DB_URL, {
        ...options,
        dialectOptions: process.env.PG_SCHEMA ? { options: `-c search_path=${process.env.PG_SCHEMA}` } : {}
      })
    case 'mysql':
      return new Sequelize(process.env.DB_URL, options)
    default:
      throw new Error(`DIALECT must be sqlite, postgres or mysql, not ${process.env.DIALECT}`)
  }
}

// The model of the original sequelstore-connect package.
function defineModel (db) {
  const table = process.env.TABLE || 'ConnectSessions'
  return db.define('ConnectSession', {
    sid: { type: DataTypes.STRING, primaryKey: true },
    expires: DataTypes.DATE,
    data: DataTypes.TEXT
  }, table === 'ConnectSession' ? { freezeTableName: true } : {})
}

module.exports = { connect, defineModel }
