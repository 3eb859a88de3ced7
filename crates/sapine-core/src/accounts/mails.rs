//! The text of every mail the accounts service sends.

use chrono::{DateTime, Utc};

use super::{Email, OpaqueToken};
use crate::mail::Mail;

pub fn verification(to: &Email, public_url: &str, token: &OpaqueToken) -> Mail {
    let token = token.expose();
    Mail {
        to: to.clone(),
        subject: "Confirm your email address for Sapine".into(),
        body: format!(
            "Welcome to Sapine.\n\nConfirm your email address by opening this link:\n\n\
             {public_url}/verify-email?token={token}\n\n\
             or by sending this token to POST /api/v1/auth/verify-email:\n\n\
             Token: {token}\n\nThe link is valid for 24 hours. If you did not sign up, ignore this mail.\n"
        ),
    }
}

pub fn password_reset(to: &Email, public_url: &str, token: &OpaqueToken) -> Mail {
    let token = token.expose();
    Mail {
        to: to.clone(),
        subject: "Reset your Sapine password".into(),
        body: format!(
            "Someone asked to reset the password of your Sapine account.\n\n\
             Choose a new password here:\n\n{public_url}/reset-password?token={token}\n\n\
             or send this token with your new password to POST /api/v1/auth/reset-password:\n\n\
             Token: {token}\n\nThe token works once, within 30 minutes. If this was not you, \
             ignore this mail: your password stays as it is.\n"
        ),
    }
}

pub fn password_changed(to: &Email) -> Mail {
    Mail {
        to: to.clone(),
        subject: "Your Sapine password was changed".into(),
        body: "The password of your Sapine account was just changed, and your other sessions \
               were signed out.\n\nIf this was not you, reset your password at once and \
               contact your Sapine administrator.\n"
            .into(),
    }
}

pub fn banned(to: &Email, reason: &str, until: Option<DateTime<Utc>>) -> Mail {
    let term = match until {
        Some(until) => format!("until {}", until.to_rfc3339()),
        None => "until further notice".into(),
    };
    Mail {
        to: to.clone(),
        subject: "Your Sapine account has been suspended".into(),
        body: format!(
            "Your Sapine account has been suspended {term}.\n\nReason: {reason}\n\n\
             Your bots were stopped and your sessions signed out. Contact your Sapine \
             administrator if you think this is a mistake.\n"
        ),
    }
}
