//! The field names of a `#[derive(Deserialize)]` struct, asked of serde itself, so that
//! a kind's keys are written once (as its `Raw` struct) and never drift from a list.

use serde::de::{self, DeserializeOwned, Visitor};
use serde::forward_to_deserialize_any;

/// A deserializer that answers nothing and remembers the field list a struct asks for.
struct Grab(Option<&'static [&'static str]>);

fn stop() -> de::value::Error {
    de::Error::custom("field names taken")
}

impl<'de> de::Deserializer<'de> for &mut Grab {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(stop())
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0 = Some(fields);
        Err(stop())
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
        identifier ignored_any
    }
}

/// The fields of `T`, in declaration order; none when `T` is not a plain struct.
pub(super) fn of<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut g = Grab(None);
    let _ = T::deserialize(&mut g);
    g.0.unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Raw {
        set: Option<String>,
        #[serde(rename = "time-out")]
        timeout: Option<u32>,
    }

    #[derive(serde::Deserialize)]
    struct Empty {}

    #[test]
    fn reads_the_field_names_in_order() {
        assert_eq!(super::of::<Raw>(), ["set", "time-out"]);
        assert!(super::of::<Empty>().is_empty());
        assert!(super::of::<std::collections::BTreeMap<String, u8>>().is_empty());
    }
}
