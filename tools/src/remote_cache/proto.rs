//! The two messages of `google/bytestream/bytestream.proto` that a ByteStream `Read` carries,
//! declared with prost's derive. They are written here rather than generated because the tool
//! needs only these two (field numbers and types as in the .proto), and generating them would
//! put protoc and a build script into every build of the tool.

/// `google.bytestream.ReadRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadRequest {
    /// REAPI: `[{instance_name}/]blobs/{hash}/{size}`.
    #[prost(string, tag = "1")]
    pub resource_name: String,
    #[prost(int64, tag = "2")]
    pub read_offset: i64,
    /// 0: to the end.
    #[prost(int64, tag = "3")]
    pub read_limit: i64,
}

/// `google.bytestream.ReadResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadResponse {
    #[prost(bytes = "vec", tag = "10")]
    pub data: Vec<u8>,
}

/// The method's HTTP/2 path.
pub const READ_PATH: &str = "/google.bytestream.ByteStream/Read";
