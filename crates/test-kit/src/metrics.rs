//! Reading the Prometheus text exposition the daemon serves (or renders in process).

/// The value of the first sample whose line starts with `prefix` (metric name and, to be
/// exact, its labels in the order the registry prints them).
pub fn value(body: &str, prefix: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// The sum of every sample whose line starts with `prefix` (e.g. one metric over all
/// its label values); 0 when there is none.
pub fn sum(body: &str, prefix: &str) -> f64 {
    body.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = "# HELP x_total things\n# TYPE x_total counter\nx_total{a=\"1\"} 2\nx_total{a=\"2\"} 3.5\ny 7\n";

    #[test]
    fn reads_one_sample_or_the_sum_of_a_family() {
        assert_eq!(value(BODY, "x_total{a=\"2\"}"), Some(3.5));
        assert_eq!(value(BODY, "y "), Some(7.0));
        assert_eq!(value(BODY, "z"), None);
        assert_eq!(sum(BODY, "x_total"), 5.5);
        assert_eq!(sum(BODY, "z"), 0.0);
    }
}
