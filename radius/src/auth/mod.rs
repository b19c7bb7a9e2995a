pub mod chap;
