//! How builders take axes, one style everywhere: a reduction covers `All` (or `None`),
//! one axis (`1`, `-1`, of any integer type) or several (`[0, 2]`, `&axes[..]`, `vec![..]`,
//! `Some(&axes[..])`);
//! an op along one axis (argmax, cumsum) takes an axis (`1`, `Some(1)`) or `None` / `All`
//! for the flattened tensor. Negative axes count from the end.

/// Every axis, for reductions and ops that can work on the flattened tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct All;

/// The axes a reduction covers: `None` or `All` for all of them.
pub trait Axes {
    /// The axes as written (`None`: all).
    fn into_axes(self) -> Option<Vec<isize>>;
}

impl Axes for All {
    fn into_axes(self) -> Option<Vec<isize>> {
        None
    }
}

impl Axes for Option<&[isize]> {
    fn into_axes(self) -> Option<Vec<isize>> {
        self.map(|a| a.to_vec())
    }
}

impl Axes for &[isize] {
    fn into_axes(self) -> Option<Vec<isize>> {
        Some(self.to_vec())
    }
}

/// An axis written as any integer type; one beyond `isize` becomes `isize::MAX`, which
/// every rank refuses (an error naming the axis, never another axis).
fn axis_of<T: TryInto<isize>>(a: T) -> isize {
    a.try_into().unwrap_or(isize::MAX)
}

macro_rules! axes_from_ints {
    ($($t:ty),*) => {$(
        impl Axes for $t {
            fn into_axes(self) -> Option<Vec<isize>> {
                Some(vec![axis_of(self)])
            }
        }
        impl<const N: usize> Axes for [$t; N] {
            fn into_axes(self) -> Option<Vec<isize>> {
                Some(self.iter().map(|a| axis_of(*a)).collect())
            }
        }
        impl<const N: usize> Axes for &[$t; N] {
            fn into_axes(self) -> Option<Vec<isize>> {
                Some(self.iter().map(|a| axis_of(*a)).collect())
            }
        }
        impl Axes for Vec<$t> {
            fn into_axes(self) -> Option<Vec<isize>> {
                Some(self.into_iter().map(axis_of).collect())
            }
        }
        impl AxisOrAll for $t {
            fn into_axis(self) -> Option<isize> {
                Some(axis_of(self))
            }
        }
    )*};
}
axes_from_ints!(i32, i64, isize, usize);

/// One axis, or `None` / `All` for the flattened tensor.
pub trait AxisOrAll {
    /// The axis as written (`None`: the flattened tensor).
    fn into_axis(self) -> Option<isize>;
}

impl AxisOrAll for All {
    fn into_axis(self) -> Option<isize> {
        None
    }
}

impl AxisOrAll for Option<isize> {
    fn into_axis(self) -> Option<isize> {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_style_names_the_same_axes() {
        let axes: &[isize] = &[0, -1];
        assert_eq!(None.into_axes(), All.into_axes());
        assert_eq!([0, -1].into_axes(), Some(vec![0, -1]));
        assert_eq!(axes.into_axes(), Some(vec![0, -1]));
        assert_eq!(Some(axes).into_axes(), Some(vec![0, -1]));
        assert_eq!(1.into_axes(), Some(vec![1]));
        assert_eq!(Some(1).into_axis(), 1.into_axis());
        assert_eq!(None.into_axis(), All.into_axis());
        // Any integer type names the same axis; one beyond isize names none.
        assert_eq!(1usize.into_axes(), 1i64.into_axes());
        assert_eq!(vec![0usize, 2].into_axes(), Some(vec![0, 2]));
        assert_eq!(2usize.into_axis(), Some(2));
        assert_eq!(usize::MAX.into_axis(), Some(isize::MAX));
    }
}
