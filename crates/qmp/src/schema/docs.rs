//! Markdown reference pages generated from the declarations: one for the
//! commands, one for the events, each with the types they use.

use std::collections::BTreeMap;

use super::types::{CommandDecl, EventDecl, MemberInfo, TypeInfo};

const NOTICE: &str =
    "<!-- Generated from kvmon's QMP schema by `cargo xtask qmp-docs`; do not edit. -->";

/// `docs/qmp/commands.md`.
pub fn commands_page(commands: &[CommandDecl]) -> String {
    let mut page = Page::default();
    page.line(NOTICE);
    page.line("# QMP commands");
    page.line("");
    page.line(
        "kvmon answers these commands as QEMU 10.0 does: same arguments, same \
         results, same errors. Type names are those of QEMU's schema; \
         `query-qmp-schema` shows them masked as numbers, as QEMU does.",
    );
    let mut sorted: Vec<&CommandDecl> = commands.iter().collect();
    sorted.sort_by_key(|command| command.name);
    for command in sorted {
        page.entity(command.name, command.doc);
        page.members("Argument", (command.args)());
        page.line("");
        let returns = (command.returns)();
        if returns.is_empty_object() {
            page.line("Returns: nothing (`{}`).");
        } else {
            let name = page.type_name(returns);
            page.line(&format!("Returns: {name}."));
        }
        if command.allow_oob {
            page.line("");
            page.line(
                "May run out of band (`exec-oob`) once the client enabled the `oob` capability.",
            );
        }
    }
    page.types();
    page.text
}

/// `docs/qmp/events.md`.
pub fn events_page(events: &[EventDecl]) -> String {
    let mut page = Page::default();
    page.line(NOTICE);
    page.line("# QMP events");
    page.line("");
    page.line(
        "Events reach every client that has completed capabilities negotiation, \
         as `{\"event\": NAME, \"data\": {...}, \"timestamp\": {\"seconds\": S, \
         \"microseconds\": U}}`; the timestamp is when the event happened. An event \
         caused by a command is sent before that command's return.",
    );
    let mut sorted: Vec<&EventDecl> = events.iter().collect();
    sorted.sort_by_key(|event| event.name);
    for event in sorted {
        page.entity(event.name, event.doc);
        let data = (event.data)();
        if data.is_empty_object() {
            page.line("No data.");
        } else {
            page.members("Member", data);
        }
    }
    page.types();
    page.text
}

#[derive(Default)]
struct Page {
    text: String,
    /// Named types referred to, documented at the end.
    types: BTreeMap<String, TypeInfo>,
}

impl Page {
    fn line(&mut self, line: &str) {
        self.text.push_str(line);
        self.text.push('\n');
    }

    /// A command's or event's heading and description.
    fn entity(&mut self, name: &str, doc: &str) {
        self.line("");
        self.line(&format!("## `{name}`"));
        self.line("");
        self.doc(doc);
        self.line("");
    }

    /// A doc comment, its lines joined into paragraphs.
    fn doc(&mut self, doc: &str) {
        let text = doc.lines().map(str::trim).collect::<Vec<_>>().join("\n");
        let text = text.trim();
        self.line(if text.is_empty() {
            "(undocumented)"
        } else {
            text
        });
    }

    /// The members of an object type as a table, or "none".
    fn members(&mut self, what: &str, ty: TypeInfo) {
        let TypeInfo::Object(info) = ty else {
            let name = self.type_name(ty);
            self.line(&format!("{what}s: {name}."));
            return;
        };
        if info.members.is_empty() && info.union.is_none() {
            self.line(&format!("{what}s: none."));
            return;
        }
        self.line(&format!("| {what} | Type | Optional | Description |"));
        self.line("|---|---|---|---|");
        for member in info.all_members() {
            self.member_row(member);
        }
    }

    fn member_row(&mut self, member: &MemberInfo) {
        let name = self.type_name((member.ty)());
        let optional = if member.optional { "yes" } else { "" };
        let doc = one_line(member.doc);
        self.line(&format!(
            "| `{}` | {name} | {optional} | {doc} |",
            member.name
        ));
    }

    /// How a type is shown: built-ins plainly, named types as links.
    fn type_name(&mut self, ty: TypeInfo) -> String {
        match ty {
            TypeInfo::Builtin(builtin) => format!("`{}`", builtin.name()),
            TypeInfo::Array(element) => format!("array of {}", self.type_name(element())),
            TypeInfo::Enum(_) | TypeInfo::Object(_) => {
                let name = ty.name();
                self.types.entry(name.clone()).or_insert(ty);
                format!("[`{name}`](#{})", name.to_lowercase())
            }
        }
    }

    /// Documents every named type referred to, and those they refer to.
    fn types(&mut self) {
        let mut done = Vec::new();
        let mut sections = String::new();
        while let Some((name, ty)) = self
            .types
            .iter()
            .find(|(name, _)| !done.contains(*name))
            .map(|(name, ty)| (name.clone(), *ty))
        {
            done.push(name.clone());
            let start = self.text.len();
            self.line("");
            self.line(&format!("### `{name}`"));
            self.line("");
            match ty {
                TypeInfo::Enum(info) => {
                    self.doc(info.doc);
                    self.line("");
                    self.line("| Value | Description |");
                    self.line("|---|---|");
                    for value in info.values {
                        self.line(&format!("| `{}` | {} |", value.name, one_line(value.doc)));
                    }
                }
                TypeInfo::Object(info) => {
                    self.doc(info.doc);
                    self.line("");
                    self.members("Member", ty);
                    if let Some(union) = &info.union {
                        for variant in union.variants {
                            let ty = (variant.ty)();
                            let members = if ty.is_empty_object() {
                                "no further members".to_string()
                            } else {
                                format!("the members of {}", self.type_name(ty))
                            };
                            self.line("");
                            self.line(&format!(
                                "With `{}` = `{}`: {members}.",
                                union.tag.name, variant.case
                            ));
                        }
                    }
                }
                _ => {}
            }
            let section = self.text.split_off(start);
            sections.push_str(&section);
        }
        if !sections.is_empty() {
            self.line("");
            self.line("## Types");
            self.text.push_str(&sections);
        }
    }
}

/// A doc comment as one table cell.
fn one_line(doc: &str) -> String {
    let text = doc.lines().map(str::trim).collect::<Vec<_>>().join(" ");
    text.trim().replace('|', "\\|")
}
