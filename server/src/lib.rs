pub mod lualibs;
pub mod planner;
