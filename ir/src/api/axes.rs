//! How builders take axes, one style everywhere: a reduction covers `All` (or `None`),
//! one axis (`1`, `-1`) or several (`[0, 2]`, `&axes[..]`, `vec![..]`, `Some(&axes[..])`);
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

impl Axes for Vec<isize> {
    fn into_axes(self) -> Option<Vec<isize>> {
        Some(self)
    }
}

macro_rules! axes_from_ints {
    ($($t:ty),*) => {$(
        impl Axes for $t {
            fn into_axes(self) -> Option<Vec<isize>> {
                Some(vec![self as isize])
            }
        }
        impl<const N: usize> Axes for [$t; N] {
            fn into_axes(self) -> Option<Vec<isize>> {
                Some(self.iter().map(|a| *a as isize).collect())
            }
        }
        impl<const N: usize> Axes for &[$t; N] {
            fn into_axes(self) -> Option<Vec<isize>> {
                Some(self.iter().map(|a| *a as isize).collect())
            }
        }
    )*};
}
axes_from_ints!(i32, isize);

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

impl AxisOrAll for isize {
    fn into_axis(self) -> Option<isize> {
        Some(self)
    }
}

impl AxisOrAll for i32 {
    fn into_axis(self) -> Option<isize> {
        Some(self as isize)
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
    }
}
