//! The command table and the dispatch of a checked request to its handler.

use std::collections::HashMap;

use qmp::commands::introspection::SchemaInfo;
use qmp::commands::{CommandInfo, Handles, MachineCommands};
use qmp::schema::{introspect, CommandDecl, EventDecl, Field};
use qmp::types::VersionInfo;
use qmp::wire::Request;
use qmp::{Command, ErrorClass, QmpError, SchemaType, Value};

/// A connection's protocol state.
#[derive(Debug, Default, Clone, Copy)]
pub struct Session {
    /// `qmp_capabilities` succeeded: every command runs and events flow.
    pub negotiated: bool,
    /// The client enabled the `oob` capability.
    pub oob: bool,
}

/// What the server knows that commands report.
#[derive(Debug)]
pub struct ServerInfo {
    pub version: VersionInfo,
    /// Ids of the socket chardevs monitors serve, which `yank` can name.
    pub chardevs: Vec<String>,
}

/// Everything a command may look at or change.
pub struct Context<'a> {
    pub machine: &'a mut (dyn MachineCommands + 'static),
    pub session: &'a mut Session,
    pub server: &'a ServerInfo,
    pub table: &'a CommandTable,
    /// Chardevs whose connections are dropped once this command has run.
    pub yanked: &'a mut Vec<String>,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("session", &self.session)
            .field("yanked", &self.yanked)
            .finish_non_exhaustive()
    }
}

type Handler = Box<dyn Fn(&mut Context<'_>, &Value) -> Result<Value, QmpError>>;

struct Entry {
    decl: CommandDecl,
    handler: Handler,
}

/// Every command kvmon answers, in the order of QEMU's schema, bound to its
/// handler; with the introspection derived from their declarations.
pub struct CommandTable {
    entries: Vec<Entry>,
    by_name: HashMap<&'static str, usize>,
    schema: Vec<SchemaInfo>,
}

impl std::fmt::Debug for CommandTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| e.decl.name))
            .finish()
    }
}

/// Builds a [`CommandTable`] one command at a time.
#[derive(Default)]
pub struct TableBuilder {
    entries: Vec<Entry>,
}

impl TableBuilder {
    /// A command the machine answers.
    pub fn machine<C: Command + 'static>(mut self) -> Self
    where
        dyn MachineCommands: Handles<C>,
    {
        self.entries.push(Entry {
            decl: C::decl(),
            handler: Box::new(|context, arguments| {
                let command = C::from_value(arguments, &Field::root())?;
                let returns = Handles::<C>::handle(&mut *context.machine, command)?;
                Ok(returns.to_value())
            }),
        });
        self
    }

    /// A command the monitor answers itself.
    pub fn monitor<C: Command + 'static>(
        mut self,
        handler: fn(&mut Context<'_>, C) -> Result<C::Returns, QmpError>,
    ) -> Self {
        self.entries.push(Entry {
            decl: C::decl(),
            handler: Box::new(move |context, arguments| {
                let command = C::from_value(arguments, &Field::root())?;
                Ok(handler(context, command)?.to_value())
            }),
        });
        self
    }

    /// The finished table; `events` complete the introspection.
    pub fn build(self, events: &[EventDecl]) -> CommandTable {
        let decls: Vec<CommandDecl> = self.entries.iter().map(|entry| entry.decl).collect();
        CommandTable {
            by_name: decls
                .iter()
                .enumerate()
                .map(|(index, decl)| (decl.name, index))
                .collect(),
            schema: introspect::schema(&decls, events),
            entries: self.entries,
        }
    }
}

impl CommandTable {
    /// Runs a checked request for a connection in `context.session`'s state.
    pub fn dispatch(
        &self,
        context: &mut Context<'_>,
        request: &Request,
    ) -> Result<Value, QmpError> {
        let result = self.run(context, request);
        if context.session.negotiated {
            return result;
        }
        // Before negotiation every unknown command gets the same hint, as in QEMU.
        result.map_err(|error| match error.class {
            ErrorClass::CommandNotFound => QmpError::command_not_found(
                "Expecting capabilities negotiation with 'qmp_capabilities'",
            ),
            _ => error,
        })
    }

    fn run(&self, context: &mut Context<'_>, request: &Request) -> Result<Value, QmpError> {
        let name = request.command.as_str();
        let entry = self
            .by_name
            .get(name)
            .map(|&index| &self.entries[index])
            .filter(|entry| context.session.negotiated || entry.decl.name == "qmp_capabilities")
            .ok_or_else(|| {
                QmpError::command_not_found(format!("The command {name} has not been found"))
            })?;
        if request.oob && !entry.decl.allow_oob {
            return Err(QmpError::generic(format!(
                "The command {name} does not support OOB"
            )));
        }
        (entry.handler)(context, &request.arguments)
    }

    /// `query-commands`: QEMU lists the commands last registered first.
    pub fn command_list(&self) -> Vec<CommandInfo> {
        self.entries
            .iter()
            .rev()
            .map(|entry| CommandInfo {
                name: entry.decl.name.to_string(),
            })
            .collect()
    }

    pub fn schema(&self) -> &[SchemaInfo] {
        &self.schema
    }

    pub fn decls(&self) -> impl Iterator<Item = &CommandDecl> {
        self.entries.iter().map(|entry| &entry.decl)
    }
}
