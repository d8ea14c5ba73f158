//! The portable stack keeps the same contract as the main std stack.

use crate::std_tcp::contract::contract_tests;

contract_tests!(
    crate::std_tcp::PortableTcpStack,
    crate::std_tcp::PortableSocket,
    crate::std_tcp::PortableWait
);
