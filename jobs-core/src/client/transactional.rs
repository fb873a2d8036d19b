//! Enqueue inside the application's own transaction: the job exists only if that
//! transaction commits, so "save the order, then send its confirmation" can never keep
//! one without the other.

use self::sealed::Connection;
use crate::storage::{Admitted, AnyStorage, NewJob};
use crate::{Error, Result};

/// A database connection that [`Enqueue::within`](crate::Enqueue::within) can store a job
/// on: a `sqlx::Transaction` (pass `&mut tx`) or a bare connection (`&mut *tx`) of the
/// backend the [`Jobs`](crate::Jobs) client uses, on the same database.
///
/// Implemented for SQLite and PostgreSQL connections and transactions; sealed.
pub trait EnqueueConnection: sealed::Sealed + Send {}

/// Public but unnameable outside this crate, so only this crate can implement the trait.
mod sealed {
    pub trait Sealed {
        fn connection(&mut self) -> Connection<'_>;
    }

    /// The backend a caller's connection belongs to.
    #[derive(Debug)]
    pub enum Connection<'a> {
        #[cfg(feature = "sqlite")]
        Sqlite(&'a mut sqlx::SqliteConnection),
        #[cfg(feature = "postgres")]
        Postgres(&'a mut sqlx::PgConnection),
    }
}

macro_rules! enqueue_connection {
    ($feature:literal, $variant:ident, $connection:ty, $database:ty) => {
        #[cfg(feature = $feature)]
        impl sealed::Sealed for $connection {
            fn connection(&mut self) -> Connection<'_> {
                Connection::$variant(self)
            }
        }
        #[cfg(feature = $feature)]
        impl EnqueueConnection for $connection {}

        #[cfg(feature = $feature)]
        impl sealed::Sealed for sqlx::Transaction<'_, $database> {
            fn connection(&mut self) -> Connection<'_> {
                Connection::$variant(self)
            }
        }
        #[cfg(feature = $feature)]
        impl EnqueueConnection for sqlx::Transaction<'_, $database> {}
    };
}

enqueue_connection!("sqlite", Sqlite, sqlx::SqliteConnection, sqlx::Sqlite);
enqueue_connection!("postgres", Postgres, sqlx::PgConnection, sqlx::Postgres);

/// Inserts `jobs` on the caller's connection, checking it is of the client's backend.
pub(crate) async fn jobs_insert<C: EnqueueConnection + ?Sized>(
    storage: &AnyStorage,
    conn: &mut C,
    jobs: &[NewJob],
) -> Result<()> {
    match conn.connection() {
        #[cfg(feature = "sqlite")]
        Connection::Sqlite(conn) => match storage {
            AnyStorage::Sqlite(_) => crate::storage::sqlite::jobs_insert_with(conn, jobs).await,
            #[allow(unreachable_patterns)]
            _ => Err(Error::Config(
                "transactional enqueue on a SQLite connection, but this Jobs client stores \
                 jobs in PostgreSQL"
                    .into(),
            )),
        },
        #[cfg(feature = "postgres")]
        Connection::Postgres(conn) => match storage {
            AnyStorage::Postgres(_) => crate::storage::postgres::jobs_insert_with(conn, jobs).await,
            #[allow(unreachable_patterns)]
            _ => Err(Error::Config(
                "transactional enqueue on a PostgreSQL connection, but this Jobs client \
                 stores jobs in SQLite"
                    .into(),
            )),
        },
    }
}

/// Inserts `jobs` on the caller's connection as `LifecycleStore::jobs_admit` does,
/// checking unique keys there, and checking the connection is of the client's backend.
pub(crate) async fn jobs_admit<C: EnqueueConnection + ?Sized>(
    storage: &AnyStorage,
    conn: &mut C,
    jobs: &[NewJob],
) -> Result<Vec<Admitted>> {
    match conn.connection() {
        #[cfg(feature = "sqlite")]
        Connection::Sqlite(conn) => match storage {
            AnyStorage::Sqlite(_) => crate::storage::sqlite::jobs_admit_with(conn, jobs).await,
            #[allow(unreachable_patterns)]
            _ => Err(wrong_backend("SQLite", "PostgreSQL")),
        },
        #[cfg(feature = "postgres")]
        Connection::Postgres(conn) => match storage {
            AnyStorage::Postgres(_) => crate::storage::postgres::jobs_admit_with(conn, jobs).await,
            #[allow(unreachable_patterns)]
            _ => Err(wrong_backend("PostgreSQL", "SQLite")),
        },
    }
}

/// The error for a connection of one backend given to a client of the other.
#[allow(dead_code)]
fn wrong_backend(connection: &str, client: &str) -> Error {
    Error::Config(format!(
        "transactional enqueue on a {connection} connection, but this Jobs client stores \
         jobs in {client}"
    ))
}
