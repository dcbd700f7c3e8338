//! What the rewrite pipeline did: rules fired, time spent, and why each group stopped.

use std::fmt;
use std::time::Duration;

use super::Rule;

/// Why a rewrite group stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// No rule applies any more.
    Saturated,
    /// A topological group made its one pass.
    OnePass,
    /// The pass budget ran out while rules still fired.
    PassLimit(usize),
    /// The graph grew past the node budget.
    NodeLimit(usize),
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::Saturated => f.write_str("saturated"),
            StopReason::OnePass => f.write_str("one pass"),
            StopReason::PassLimit(n) => write!(f, "still changing after {n} passes"),
            StopReason::NodeLimit(n) => write!(f, "the graph grew past {n} nodes"),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct RuleStat {
    pub name: &'static str,
    pub tag: &'static str,
    pub fired: usize,
    pub time: Duration,
}

#[derive(Clone, Debug, PartialEq)]
pub struct GroupStat {
    pub name: String,
    pub reason: StopReason,
    pub time: Duration,
}

/// Per-rule counts and times, and per-group stop reasons, in the order they ran.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RewriteReport {
    pub rules: Vec<RuleStat>,
    pub groups: Vec<GroupStat>,
}

impl RewriteReport {
    fn stat(&mut self, rule: &Rule) -> &mut RuleStat {
        let i = match self.rules.iter().position(|r| r.name == rule.name) {
            Some(i) => i,
            None => {
                self.rules.push(RuleStat {
                    name: rule.name,
                    tag: rule.tag,
                    fired: 0,
                    time: Duration::ZERO,
                });
                self.rules.len() - 1
            }
        };
        &mut self.rules[i]
    }

    pub(crate) fn record(&mut self, rule: &Rule, fired: usize, time: Duration) {
        let s = self.stat(rule);
        s.fired += fired;
        s.time += time;
    }

    pub(crate) fn record_time(&mut self, rule: &Rule, time: Duration) {
        self.stat(rule).time += time;
    }

    pub(crate) fn finish_group(&mut self, name: &str, reason: StopReason, time: Duration) {
        self.groups.push(GroupStat {
            name: name.to_string(),
            reason,
            time,
        });
    }

    /// How often the named rule fired.
    pub fn fired(&self, name: &str) -> usize {
        self.rules
            .iter()
            .find(|r| r.name == name)
            .map_or(0, |r| r.fired)
    }

    /// The rules that fired most, as `name×count` text.
    pub fn top_rules(&self, n: usize) -> String {
        let mut fired: Vec<&RuleStat> = self.rules.iter().filter(|r| r.fired > 0).collect();
        fired.sort_by_key(|r| std::cmp::Reverse(r.fired));
        fired
            .iter()
            .take(n)
            .map(|r| format!("{}×{}", r.name, r.fired))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for RewriteReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<28} {:<13} {:>6} {:>10}",
            "rule", "group", "fired", "time"
        )?;
        for r in self.rules.iter().filter(|r| r.fired > 0) {
            writeln!(
                f,
                "{:<28} {:<13} {:>6} {:>8.1}µs",
                r.name,
                r.tag,
                r.fired,
                r.time.as_secs_f64() * 1e6
            )?;
        }
        for g in &self.groups {
            writeln!(
                f,
                "group {:<22} {:<20} {:>8.1}µs",
                g.name,
                g.reason.to_string(),
                g.time.as_secs_f64() * 1e6
            )?;
        }
        Ok(())
    }
}
