//! Pulumi URNs, `urn:pulumi:<stack>::<project>::<qualified type>::<name>`: the one parser and
//! builder shared by journal replay and stack rename.

/// Prefix shared by every valid URN.
pub(crate) const PREFIX: &str = "urn:pulumi:";
/// Separator between URN parts and between a provider reference's URN and ID.
pub(crate) const DELIMITER: &str = "::";

/// The parts of a valid URN. The name is everything after the third delimiter and may itself
/// contain `::`.
pub(crate) struct UrnParts<'a> {
    pub(crate) stack: &'a str,
    pub(crate) project: &'a str,
    pub(crate) qualified_type: &'a str,
    pub(crate) name: &'a str,
}

/// Splits a URN the way Go's `urn.URN` accessors do; `None` for anything that is not a valid
/// URN (missing prefix or fewer than three delimiters), where Go would panic.
pub(crate) fn parse(urn: &str) -> Option<UrnParts<'_>> {
    let mut parts = urn.strip_prefix(PREFIX)?.splitn(4, DELIMITER);
    Some(UrnParts {
        stack: parts.next()?,
        project: parts.next()?,
        qualified_type: parts.next()?,
        name: parts.next()?,
    })
}

/// Builds a URN from its parts.
pub(crate) fn format(stack: &str, project: &str, qualified_type: &str, name: &str) -> String {
    format!("{PREFIX}{stack}{DELIMITER}{project}{DELIMITER}{qualified_type}{DELIMITER}{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_format_round_trip() {
        let urn = "urn:pulumi:dev::proj::aws:s3/bucket:Bucket::name::with::colons";
        let p = parse(urn).unwrap();
        assert_eq!(
            (p.stack, p.project, p.qualified_type, p.name),
            ("dev", "proj", "aws:s3/bucket:Bucket", "name::with::colons")
        );
        assert_eq!(format(p.stack, p.project, p.qualified_type, p.name), urn);
        assert!(parse("urn:pulumi:dev::proj::type").is_none());
        assert!(parse("not-a-urn").is_none());
    }
}
