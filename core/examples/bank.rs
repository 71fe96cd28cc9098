//! A state machine of our own: bank accounts with atomic transfers, replicated by three nodes
//! of the threads driver while clients move money around concurrently and a node crashes.
//! However the transfers interleave, no money is made or lost.
//!
//! ```sh
//! cargo run -p raftkv-core --example bank
//! ```

mod threaded;

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::thread;

use raftkv_core::NodeId;
use raftkv_core::state_machine::{InvalidCommand, RestoreError, StateMachine};
use serde::{Deserialize, Serialize};
use threaded::Cluster;

/// Balances by account. Shared with the views snapshots take, and copied on the first write
/// after one (`Arc::make_mut`): taking a view costs nothing.
#[derive(Default)]
struct Bank {
    accounts: Arc<BTreeMap<String, u64>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
enum BankCommand {
    Deposit {
        account: String,
        amount: u64,
    },
    /// Moves `amount` from one account to another, or nothing if `from` holds less.
    Transfer {
        from: String,
        to: String,
        amount: u64,
    },
    Balance {
        account: String,
    },
    /// The sum of every balance.
    Total,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum BankReply {
    /// A balance, or the total.
    Amount(u64),
    Transferred,
    InsufficientFunds {
        available: u64,
    },
    /// The deposit would take the bank's total past what it can count.
    TooMuch,
}

/// Longest account name.
const MAX_NAME_BYTES: usize = 64;

impl StateMachine for Bank {
    type Command = BankCommand;
    type Reply = BankReply;
    type View = Arc<BTreeMap<String, u64>>;

    fn is_read_only(command: &BankCommand) -> bool {
        matches!(command, BankCommand::Balance { .. } | BankCommand::Total)
    }

    fn validate(&self, command: &BankCommand) -> Result<(), InvalidCommand> {
        let refuse = |reason: &str| Err(InvalidCommand { reason: reason.to_owned() });
        match command {
            BankCommand::Deposit { account, .. } if account.len() > MAX_NAME_BYTES => {
                refuse("account name too long")
            }
            BankCommand::Transfer { to, .. } if to.len() > MAX_NAME_BYTES => {
                refuse("account name too long")
            }
            BankCommand::Transfer { from, to, .. } if from == to => refuse("a transfer to itself"),
            _ => Ok(()),
        }
    }

    fn apply(&mut self, command: &BankCommand) -> BankReply {
        let balance =
            |accounts: &BTreeMap<String, u64>, name: &str| accounts.get(name).copied().unwrap_or(0);
        match command {
            BankCommand::Deposit { account, amount } => {
                // Below the total, no balance can overflow.
                if total(&self.accounts).checked_add(*amount).is_none() {
                    return BankReply::TooMuch;
                }
                let accounts = Arc::make_mut(&mut self.accounts);
                let new = balance(accounts, account) + amount;
                accounts.insert(account.clone(), new);
                BankReply::Amount(new)
            }
            BankCommand::Transfer { from, to, amount } => {
                let available = balance(&self.accounts, from);
                if available < *amount {
                    return BankReply::InsufficientFunds { available };
                }
                let accounts = Arc::make_mut(&mut self.accounts);
                let received = balance(accounts, to) + amount;
                accounts.insert(from.clone(), available - amount);
                accounts.insert(to.clone(), received);
                BankReply::Transferred
            }
            BankCommand::Balance { .. } | BankCommand::Total => self.read(command),
        }
    }

    fn read(&self, command: &BankCommand) -> BankReply {
        match command {
            BankCommand::Balance { account } => {
                BankReply::Amount(self.accounts.get(account).copied().unwrap_or(0))
            }
            _ => BankReply::Amount(total(&self.accounts)),
        }
    }

    fn view(&self) -> Self::View {
        Arc::clone(&self.accounts)
    }

    /// The encoding: the number of accounts, then each name's length, name and balance.
    fn encoded_len(view: &Self::View) -> u64 {
        let names: usize = view.keys().map(String::len).sum();
        (8 + names + view.len() * 16) as u64
    }

    fn encode_into(view: &Self::View, out: &mut dyn io::Write) -> io::Result<()> {
        out.write_all(&(view.len() as u64).to_le_bytes())?;
        for (name, balance) in view.iter() {
            out.write_all(&(name.len() as u64).to_le_bytes())?;
            out.write_all(name.as_bytes())?;
            out.write_all(&balance.to_le_bytes())?;
        }
        Ok(())
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), RestoreError> {
        let mut reader = Reader(snapshot);
        let mut accounts = BTreeMap::new();
        for _ in 0..reader.number()? {
            let length = usize::try_from(reader.number()?).unwrap_or(usize::MAX);
            let name = String::from_utf8(reader.take(length)?.to_vec())
                .map_err(|_| RestoreError { reason: "an account name is not UTF-8".to_owned() })?;
            accounts.insert(name, reader.number()?);
        }
        self.accounts = Arc::new(accounts);
        Ok(())
    }
}

/// Reads the fields of a snapshot, in order.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, length: usize) -> Result<&'a [u8], RestoreError> {
        let truncated = || RestoreError { reason: "truncated".to_owned() };
        let (taken, rest) = self.0.split_at_checked(length).ok_or_else(truncated)?;
        self.0 = rest;
        Ok(taken)
    }

    fn number(&mut self) -> Result<u64, RestoreError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes taken")))
    }
}

fn total(accounts: &BTreeMap<String, u64>) -> u64 {
    accounts.values().sum()
}

const ACCOUNTS: u64 = 5;
const OPENING_BALANCE: u64 = 1_000;
const TELLERS: u64 = 4;
const TRANSFERS: u64 = 60;

fn account(number: u64) -> String {
    format!("account-{}", number % ACCOUNTS)
}

fn main() {
    let mut cluster = Cluster::start(3, Bank::default);
    let mut client = cluster.client();
    for number in 0..ACCOUNTS {
        let deposit = BankCommand::Deposit { account: account(number), amount: OPENING_BALANCE };
        assert_eq!(client.call(deposit), Ok(BankReply::Amount(OPENING_BALANCE)));
    }
    let refused = thread::scope(|scope| {
        let tellers: Vec<_> = (0..TELLERS)
            .map(|teller| {
                let mut client = cluster.client();
                scope.spawn(move || {
                    let mut refused = 0;
                    for i in 0..TRANSFERS {
                        // Amounts large enough that some transfers find too little money.
                        let (from, to) = (account(teller + i), account(teller + i + 1 + i % 4));
                        let amount = 100 + (teller * 7 + i * 13) % 700;
                        let transfer = BankCommand::Transfer { from, to, amount };
                        match client.call(transfer) {
                            Ok(BankReply::Transferred) => {}
                            Ok(BankReply::InsufficientFunds { .. }) => refused += 1,
                            other => panic!("a transfer answered {other:?}"),
                        }
                    }
                    refused
                })
            })
            .collect();
        cluster.restart(NodeId(2));
        tellers.into_iter().map(|teller| teller.join().expect("no panic")).sum::<u64>()
    });

    let expected = ACCOUNTS * OPENING_BALANCE;
    assert_eq!(client.call(BankCommand::Total), Ok(BankReply::Amount(expected)));
    let mut sum = 0;
    for number in 0..ACCOUNTS {
        let Ok(BankReply::Amount(balance)) =
            client.call(BankCommand::Balance { account: account(number) })
        else {
            panic!("a balance is missing")
        };
        println!("{}: {balance}", account(number));
        sum += balance;
    }
    assert_eq!(sum, expected, "no money made or lost");
    println!("{} transfers, {refused} refused for insufficient funds", TELLERS * TRANSFERS);
    cluster.stop();
}
