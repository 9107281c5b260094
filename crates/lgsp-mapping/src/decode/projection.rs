//! What of an XML document a mapping can read: a tree of element names.
//!
//! A [`Projection`] is derived once per mapping from its JSONPaths (see
//! `dsl::program`). Decoding with it builds the same tree as [`super::decode_xml`] minus
//! the child elements no path can reach: every element on a path is built with all its
//! attributes, its text and every child of each name a path can follow (so a repeated
//! name is still an array, a single one still a value), and a node a path selects as a
//! value is built whole. A skipped element is still parsed and checked exactly as the
//! full decoder checks it, so a bad document fails with the same error either way.
//!
//! Node 0 stands for the document (`{"<root>": ...}`).

use std::collections::BTreeMap;

/// Index of a node of a [`Projection`] or a [`ProjectionBuilder`].
pub type NodeId = u32;

/// The document node of every projection and builder.
pub const DOCUMENT: NodeId = 0;

/// A finished projection: for each node, whether it is kept whole, and the nodes of its
/// children by name (with the wildcard's node merged in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Projection {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    whole: bool,
    /// Sorted by name.
    children: Vec<(Box<str>, NodeId)>,
    /// The node of a child whose name is not in `children`.
    any: Option<NodeId>,
}

impl Projection {
    /// Is everything under `node` kept?
    pub(crate) fn is_whole(&self, node: NodeId) -> bool {
        self.nodes.get(node as usize).is_some_and(|n| n.whole)
    }

    /// The node of a child element named `name` (local name, NFC) of an element at
    /// `node`, or `None` when no path can reach it.
    pub(crate) fn child(&self, node: NodeId, name: &str) -> Option<NodeId> {
        let n = self.nodes.get(node as usize)?;
        match n.children.binary_search_by(|(k, _)| k.as_ref().cmp(name)) {
            Ok(i) => Some(n.children[i].1),
            // A path reads a name the sender spells otherwise (`@Ten` given as <Ten>,
            // another key style): the path's lookup falls back the same way.
            Err(_) => n
                .children
                .iter()
                .find(|(k, _)| super::same_field(k, name))
                .map(|(_, id)| *id)
                .or(n.any),
        }
    }

    /// Does the document node keep everything (so projecting saves nothing)?
    pub fn keeps_everything(&self) -> bool {
        self.is_whole(DOCUMENT)
    }

    /// How many element names the projection keeps (for tests and diagnostics).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Never true: there is always the document node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

/// Collects what paths read, then [`ProjectionBuilder::finish`]es into a [`Projection`].
#[derive(Debug, Clone)]
pub struct ProjectionBuilder {
    nodes: Vec<BuildNode>,
}

#[derive(Debug, Clone, Default)]
struct BuildNode {
    whole: bool,
    children: BTreeMap<String, NodeId>,
    any: Option<NodeId>,
}

impl Default for ProjectionBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ProjectionBuilder {
    /// A builder with only the document node.
    pub fn new() -> Self {
        ProjectionBuilder {
            nodes: vec![BuildNode::default()],
        }
    }

    fn push(&mut self) -> NodeId {
        self.nodes.push(BuildNode::default());
        (self.nodes.len() - 1) as NodeId
    }

    /// The node of the member `name` of the value at `node`.
    pub fn child(&mut self, node: NodeId, name: &str) -> NodeId {
        if let Some(&c) = self.nodes[node as usize].children.get(name) {
            return c;
        }
        let c = self.push();
        self.nodes[node as usize]
            .children
            .insert(name.to_owned(), c);
        c
    }

    /// The node standing for any member of the value at `node`.
    pub fn any(&mut self, node: NodeId) -> NodeId {
        if let Some(c) = self.nodes[node as usize].any {
            return c;
        }
        let c = self.push();
        self.nodes[node as usize].any = Some(c);
        c
    }

    /// Keep everything under `node`.
    pub fn whole(&mut self, node: NodeId) {
        self.nodes[node as usize].whole = true;
    }

    /// Merge wildcards into named children and drop what is under whole nodes.
    pub fn finish(&self) -> Projection {
        let mut out = Projection { nodes: Vec::new() };
        self.build(&[DOCUMENT], &mut out);
        out
    }

    fn build(&self, sources: &[NodeId], out: &mut Projection) -> NodeId {
        let id = out.nodes.len() as NodeId;
        out.nodes.push(Node {
            whole: true,
            children: Vec::new(),
            any: None,
        });
        let nodes: Vec<&BuildNode> = sources.iter().map(|&s| &self.nodes[s as usize]).collect();
        if nodes.iter().any(|n| n.whole) {
            return id;
        }
        let anys: Vec<NodeId> = nodes.iter().filter_map(|n| n.any).collect();
        let mut names: Vec<&String> = nodes.iter().flat_map(|n| n.children.keys()).collect();
        names.sort();
        names.dedup();
        let mut children = Vec::with_capacity(names.len());
        for name in names {
            let mut srcs: Vec<NodeId> = nodes
                .iter()
                .filter_map(|n| n.children.get(name).copied())
                .collect();
            srcs.extend(&anys);
            let child = self.build(&srcs, out);
            children.push((name.clone().into_boxed_str(), child));
        }
        let any = (!anys.is_empty()).then(|| self.build(&anys, out));
        out.nodes[id as usize] = Node {
            whole: false,
            children,
            any,
        };
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_merge_into_named_children_and_whole_wins() {
        let mut b = ProjectionBuilder::new();
        let a = b.child(DOCUMENT, "A");
        let x = b.child(a, "X");
        let y = b.child(x, "Y");
        b.whole(y);
        let any = b.any(a);
        let z = b.child(any, "Z");
        b.whole(z);
        let p = b.finish();
        let a = p.child(DOCUMENT, "A").unwrap();
        assert!(!p.is_whole(a));
        let x = p.child(a, "X").unwrap();
        assert!(p.child(x, "Y").is_some_and(|y| p.is_whole(y)));
        assert!(
            p.child(x, "Z").is_some_and(|z| p.is_whole(z)),
            "X is also any child"
        );
        let other = p.child(a, "Other").unwrap();
        assert!(p.child(other, "Y").is_none());
        assert!(p.child(DOCUMENT, "B").is_none());
        assert!(!p.keeps_everything());
        let mut b = ProjectionBuilder::new();
        b.whole(DOCUMENT);
        assert!(b.finish().keeps_everything());
    }
}
