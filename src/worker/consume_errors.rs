//! Which errors a consumer's poll may report and still be waited out: pure classification.
//!
//! librdkafka reports connection trouble through the consumer's poll as error events
//! (`AllBrokersDown` when every connection dropped at once, `BrokerTransportFailure`, timeouts)
//! and then reconnects by itself. A reader that gives up on the first such event fails on a
//! broker that was only busy for a moment. What cannot get better by waiting is the topic or
//! partition not existing, the offset having gone, or the client not being allowed in.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// True when polling again cannot help: the error is about what was asked for, not about
/// the connection to it.
pub fn is_fatal(e: &KafkaError) -> bool {
    use RDKafkaErrorCode::*;
    matches!(
        e.rdkafka_error_code(),
        Some(
            UnknownTopicOrPartition
                | UnknownTopic
                | UnknownPartition
                | OffsetOutOfRange
                | TopicAuthorizationFailed
                | GroupAuthorizationFailed
                | ClusterAuthorizationFailed
                | SaslAuthenticationFailed
                | Authentication
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consumption(code: RDKafkaErrorCode) -> KafkaError {
        KafkaError::MessageConsumption(code)
    }

    #[test]
    fn connection_trouble_is_waited_out() {
        for code in [
            RDKafkaErrorCode::AllBrokersDown,
            RDKafkaErrorCode::BrokerTransportFailure,
            RDKafkaErrorCode::OperationTimedOut,
            RDKafkaErrorCode::NotLeaderForPartition,
        ] {
            assert!(!is_fatal(&consumption(code)), "{code:?}");
        }
    }

    #[test]
    fn a_missing_topic_or_offset_or_permission_is_final() {
        for code in [
            RDKafkaErrorCode::UnknownTopicOrPartition,
            RDKafkaErrorCode::OffsetOutOfRange,
            RDKafkaErrorCode::TopicAuthorizationFailed,
        ] {
            assert!(is_fatal(&consumption(code)), "{code:?}");
        }
    }

    #[test]
    fn errors_without_a_code_are_not_final() {
        assert!(!is_fatal(&KafkaError::NoMessageReceived));
    }
}
