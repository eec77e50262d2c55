//! k-means (Lloyd's algorithm) with k-means++ initialisation, seeded and deterministic.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The result of clustering.
#[derive(Debug, Clone, PartialEq)]
pub struct Clustering {
    /// Cluster index of each point.
    pub assignment: Vec<usize>,
    /// The centroids.
    pub centroids: Vec<Vec<f32>>,
    /// Lloyd iterations run.
    pub iterations: usize,
}

fn squared_distance(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

fn nearest(point: &[f32], centroids: &[Vec<f32>]) -> (usize, f32) {
    let mut best = (0, f32::INFINITY);
    for (i, c) in centroids.iter().enumerate() {
        let d = squared_distance(point, c);
        if d < best.1 {
            best = (i, d);
        }
    }
    best
}

/// k-means++ seeding: the first centre uniformly, each next one with probability
/// proportional to the squared distance to the nearest chosen centre.
fn kmeans_plus_plus(points: &[Vec<f32>], k: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<f32>> {
    let mut centroids = vec![points[rng.random_range(0..points.len())].clone()];
    let mut dist: Vec<f32> = points
        .iter()
        .map(|p| squared_distance(p, &centroids[0]))
        .collect();
    while centroids.len() < k {
        let total: f64 = dist.iter().map(|&d| f64::from(d)).sum();
        let next = if total <= 0.0 {
            // All remaining points coincide with centres: take any point.
            rng.random_range(0..points.len())
        } else {
            let mut target = rng.random::<f64>() * total;
            let mut chosen = points.len() - 1;
            for (i, &d) in dist.iter().enumerate() {
                target -= f64::from(d);
                if target < 0.0 {
                    chosen = i;
                    break;
                }
            }
            chosen
        };
        let centre = points[next].clone();
        for (d, p) in dist.iter_mut().zip(points) {
            *d = d.min(squared_distance(p, &centre));
        }
        centroids.push(centre);
    }
    centroids
}

/// Clusters `points` (all of one length) into `min(k, points.len())` clusters. An empty
/// cluster keeps its previous centroid. Stops when assignments no longer change or after
/// `max_iterations`.
pub fn kmeans(points: &[Vec<f32>], k: usize, max_iterations: usize, seed: u64) -> Clustering {
    let k = k.min(points.len());
    if k == 0 {
        return Clustering {
            assignment: Vec::new(),
            centroids: Vec::new(),
            iterations: 0,
        };
    }
    let dim = points[0].len();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut centroids = kmeans_plus_plus(points, k, &mut rng);
    let mut assignment: Vec<usize> = points.iter().map(|p| nearest(p, &centroids).0).collect();
    let mut iterations = 0;
    while iterations < max_iterations {
        iterations += 1;
        let mut sums = vec![vec![0f64; dim]; k];
        let mut counts = vec![0usize; k];
        for (p, &c) in points.iter().zip(&assignment) {
            counts[c] += 1;
            for (s, &x) in sums[c].iter_mut().zip(p) {
                *s += f64::from(x);
            }
        }
        for c in 0..k {
            if counts[c] > 0 {
                centroids[c] = sums[c]
                    .iter()
                    .map(|&s| (s / counts[c] as f64) as f32)
                    .collect();
            }
        }
        let next: Vec<usize> = points.iter().map(|p| nearest(p, &centroids).0).collect();
        if next == assignment {
            break;
        }
        assignment = next;
    }
    Clustering {
        assignment,
        centroids,
        iterations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separates_well_separated_blobs_and_is_deterministic() {
        let mut points = Vec::new();
        for i in 0..10 {
            let d = i as f32 * 0.01;
            points.push(vec![0.0 + d, 0.0]);
            points.push(vec![10.0 + d, 10.0]);
            points.push(vec![-10.0, 10.0 + d]);
        }
        let a = kmeans(&points, 3, 50, 7);
        for blob in 0..3 {
            let ids: Vec<usize> = (0..10).map(|i| a.assignment[3 * i + blob]).collect();
            assert!(
                ids.iter().all(|&c| c == ids[0]),
                "blob {blob} split: {ids:?}"
            );
        }
        let mut distinct: Vec<usize> = (0..3).map(|b| a.assignment[b]).collect();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 3);
        assert_eq!(a, kmeans(&points, 3, 50, 7));
    }

    #[test]
    fn k_is_capped_by_the_number_of_points() {
        let c = kmeans(&[vec![1.0], vec![1.0]], 5, 10, 0);
        assert_eq!(c.centroids.len(), 2);
        assert!(kmeans(&[], 3, 10, 0).assignment.is_empty());
    }
}
