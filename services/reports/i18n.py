"""Every word the tip line shows, in Dutch, French, German and English.

Templates call `_("key", name=value)`; the language comes from the `lang` in the
template context, which `pick_language` chose from the query string or the
browser's Accept-Language header (never from a cookie: the tip line sets none).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context
from jinja2.runtime import Context

Lang = Literal["nl", "fr", "de", "en"]
LANGUAGES: tuple[Lang, ...] = ("nl", "fr", "de", "en")
DEFAULT_LANGUAGE: Lang = "nl"
LANGUAGE_NAMES: dict[Lang, str] = {
    "nl": "Nederlands",
    "fr": "Français",
    "de": "Deutsch",
    "en": "English",
}
TEMPLATES_DIR = Path(__file__).parent / "templates"

# Each entry: nl, fr, de, en.
_ROWS: dict[str, tuple[str, str, str, str]] = {
    "app.title": (
        "Meldpunt drugsproductie",
        "Point de signalement de production de drogue",
        "Meldestelle Drogenproduktion",
        "Drug production tip line",
    ),
    "app.intro": (
        "Meld anoniem een vermoeden van een cannabisplantage, een drugslabo of "
        "gedumpt drugsafval. De politie bekijkt elke melding.",
        "Signalez anonymement une plantation de cannabis, un laboratoire de drogue "
        "ou un dépôt de déchets de drogue suspects. La police examine chaque "
        "signalement.",
        "Melden Sie anonym den Verdacht auf eine Cannabisplantage, ein Drogenlabor "
        "oder abgeladene Drogenabfälle. Die Polizei prüft jede Meldung.",
        "Report anonymously a suspected cannabis plantation, drug laboratory or "
        "dumped drug waste. The police look at every report.",
    ),
    "app.anonymity": (
        "Wij bewaren geen IP-adres, geen cookies en geen exact tijdstip. Uit foto's "
        "halen we de locatie en alle andere metadata.",
        "Nous ne conservons ni adresse IP, ni cookies, ni heure exacte. Nous "
        "retirons des photos la localisation et toutes les autres métadonnées.",
        "Wir speichern keine IP-Adresse, keine Cookies und keine genaue Uhrzeit. "
        "Aus Fotos entfernen wir den Standort und alle anderen Metadaten.",
        "We store no IP address, no cookies and no exact time. We remove the "
        "location and all other metadata from photos.",
    ),
    "app.emergency": (
        "Dringend gevaar? Bel 101 (politie) of 112.",
        "Danger urgent ? Appelez le 101 (police) ou le 112.",
        "Akute Gefahr? Rufen Sie 101 (Polizei) oder 112 an.",
        "Immediate danger? Call 101 (police) or 112.",
    ),
    "nav.language": ("Taal", "Langue", "Sprache", "Language"),
    "nav.new_report": (
        "Nieuwe melding",
        "Nouveau signalement",
        "Neue Meldung",
        "New report",
    ),
    "nav.followup": (
        "Mijn melding opvolgen",
        "Suivre mon signalement",
        "Meine Meldung verfolgen",
        "Follow up my report",
    ),
    "form.heading": (
        "Doe een melding",
        "Faire un signalement",
        "Meldung machen",
        "Make a report",
    ),
    "form.required_note": (
        "Velden met * zijn verplicht.",
        "Les champs marqués * sont obligatoires.",
        "Mit * markierte Felder sind Pflichtfelder.",
        "Fields marked * are required.",
    ),
    "form.category.legend": (
        "Waarover gaat het? *",
        "De quoi s'agit-il ? *",
        "Worum geht es? *",
        "What is it about? *",
    ),
    "category.plantation": (
        "Cannabisplantage",
        "Plantation de cannabis",
        "Cannabisplantage",
        "Cannabis plantation",
    ),
    "category.laboratory": (
        "Drugslabo",
        "Laboratoire de drogue",
        "Drogenlabor",
        "Drug laboratory",
    ),
    "category.waste_dumping": (
        "Gedumpt drugsafval",
        "Déchets de drogue abandonnés",
        "Abgeladene Drogenabfälle",
        "Dumped drug waste",
    ),
    "category.other": ("Iets anders", "Autre chose", "Etwas anderes", "Something else"),
    "form.where.legend": ("Waar? *", "Où ? *", "Wo? *", "Where? *"),
    "form.place.label": (
        "Postcode of gemeente *",
        "Code postal ou commune *",
        "Postleitzahl oder Gemeinde *",
        "Postcode or municipality *",
    ),
    "form.place.hint": (
        "Bijvoorbeeld 2000 of Antwerpen.",
        "Par exemple 1300 ou Wavre.",
        "Zum Beispiel 4700 oder Eupen.",
        "For example 2000 or Antwerpen.",
    ),
    "form.street.label": (
        "Straat (niet verplicht)",
        "Rue (facultatif)",
        "Straße (freiwillig)",
        "Street (optional)",
    ),
    "form.place_description.label": (
        "Beschrijving van de plaats (niet verplicht)",
        "Description du lieu (facultatif)",
        "Beschreibung des Ortes (freiwillig)",
        "Description of the place (optional)",
    ),
    "form.place_description.hint": (
        "Bijvoorbeeld: de loods achter de kerk, de derde garagebox.",
        "Par exemple : le hangar derrière l'église, le troisième garage.",
        "Zum Beispiel: die Halle hinter der Kirche, die dritte Garage.",
        "For example: the shed behind the church, the third garage.",
    ),
    "form.signals.legend": (
        "Wat viel u op?",
        "Qu'avez-vous remarqué ?",
        "Was ist Ihnen aufgefallen?",
        "What did you notice?",
    ),
    "form.signals.hint": (
        "Vink alles aan wat past.",
        "Cochez tout ce qui s'applique.",
        "Kreuzen Sie alles Zutreffende an.",
        "Tick everything that applies.",
    ),
    "signal.smell": (
        "Een sterke geur (cannabis, chemicaliën, anijs)",
        "Une forte odeur (cannabis, produits chimiques, anis)",
        "Ein starker Geruch (Cannabis, Chemikalien, Anis)",
        "A strong smell (cannabis, chemicals, aniseed)",
    ),
    "signal.ventilation_noise": (
        "Lawaai van ventilatoren, dag en nacht",
        "Bruit de ventilation, jour et nuit",
        "Lüftungsgeräusche, Tag und Nacht",
        "Ventilation noise, day and night",
    ),
    "signal.covered_windows": (
        "Afgeplakte of verduisterde ramen",
        "Fenêtres couvertes ou occultées",
        "Abgeklebte oder verdunkelte Fenster",
        "Covered or blacked-out windows",
    ),
    "signal.condensation": (
        "Condens op de ramen",
        "Condensation sur les fenêtres",
        "Kondenswasser an den Fenstern",
        "Condensation on the windows",
    ),
    "signal.power_use": (
        "Ongewoon stroomverbruik of vreemde kabels",
        "Consommation d'électricité inhabituelle ou câbles suspects",
        "Ungewöhnlicher Stromverbrauch oder seltsame Kabel",
        "Unusual power use or odd cables",
    ),
    "signal.heat": (
        "Veel warmte (geen sneeuw op het dak)",
        "Beaucoup de chaleur (pas de neige sur le toit)",
        "Viel Wärme (kein Schnee auf dem Dach)",
        "A lot of heat (no snow on the roof)",
    ),
    "signal.odd_hours_traffic": (
        "Komen en gaan op vreemde uren",
        "Allées et venues à des heures inhabituelles",
        "Kommen und Gehen zu ungewöhnlichen Zeiten",
        "Coming and going at odd hours",
    ),
    "signal.chemical_containers": (
        "Vaten, jerrycans of chemische verpakkingen",
        "Fûts, bidons ou emballages de produits chimiques",
        "Fässer, Kanister oder Chemikalienbehälter",
        "Barrels, jerrycans or chemical containers",
    ),
    "form.text.label": (
        "Wat wilt u nog kwijt? (niet verplicht)",
        "Autre chose à nous dire ? (facultatif)",
        "Möchten Sie noch etwas mitteilen? (freiwillig)",
        "Anything else to tell us? (optional)",
    ),
    "form.text.hint": (
        "Schrijf uw naam of andere gegevens over uzelf er niet bij.",
        "N'indiquez pas votre nom ni d'autres informations sur vous.",
        "Schreiben Sie nicht Ihren Namen oder andere Angaben zu Ihrer Person.",
        "Do not write your name or other details about yourself.",
    ),
    "form.photos.label": (
        "Foto's (niet verplicht)",
        "Photos (facultatif)",
        "Fotos (freiwillig)",
        "Photos (optional)",
    ),
    "form.photos.hint": (
        "Maximaal {count} foto's, JPEG of PNG, elk tot {megabytes} MB. Neem geen "
        "risico om een foto te maken.",
        "{count} photos au maximum, JPEG ou PNG, {megabytes} Mo chacune au "
        "maximum. Ne prenez aucun risque pour prendre une photo.",
        "Höchstens {count} Fotos, JPEG oder PNG, jeweils bis {megabytes} MB. Gehen "
        "Sie für ein Foto kein Risiko ein.",
        "Up to {count} photos, JPEG or PNG, up to {megabytes} MB each. Take no "
        "risk to take a photo.",
    ),
    "form.submit": (
        "Melding versturen",
        "Envoyer le signalement",
        "Meldung absenden",
        "Send report",
    ),
    "form.pow.working": (
        "Uw browser maakt de melding klaar om te versturen…",
        "Votre navigateur prépare l'envoi du signalement…",
        "Ihr Browser bereitet das Absenden der Meldung vor…",
        "Your browser is preparing to send the report…",
    ),
    "form.pow.ready": (
        "Klaar om te versturen.",
        "Prêt à être envoyé.",
        "Bereit zum Absenden.",
        "Ready to send.",
    ),
    "form.nojs": (
        "Zonder JavaScript werkt het formulier ook. Neem minstens {seconds} "
        "seconden voor u verstuurt; bij grote drukte kan het wat langer duren.",
        "Le formulaire fonctionne aussi sans JavaScript. Prenez au moins {seconds} "
        "secondes avant d'envoyer ; en cas d'affluence, cela peut prendre plus "
        "de temps.",
        "Das Formular funktioniert auch ohne JavaScript. Nehmen Sie sich "
        "mindestens {seconds} Sekunden Zeit vor dem Absenden; bei großem Andrang "
        "kann es länger dauern.",
        "The form also works without JavaScript. Take at least {seconds} seconds "
        "before sending; when many reports come in it can take longer.",
    ),
    "form.errors.heading": (
        "Controleer de aangeduide velden.",
        "Veuillez vérifier les champs indiqués.",
        "Bitte prüfen Sie die markierten Felder.",
        "Please check the fields marked below.",
    ),
    "error.label": ("Fout", "Erreur", "Fehler", "Error"),
    "error.required": (
        "Dit veld is verplicht.",
        "Ce champ est obligatoire.",
        "Dieses Feld ist ein Pflichtfeld.",
        "This field is required.",
    ),
    "error.invalid": (
        "Deze waarde klopt niet.",
        "Cette valeur n'est pas valable.",
        "Dieser Wert ist ungültig.",
        "This value is not valid.",
    ),
    "error.too_long": (
        "Deze tekst is te lang.",
        "Ce texte est trop long.",
        "Dieser Text ist zu lang.",
        "This text is too long.",
    ),
    "error.control_characters": (
        "Deze tekst bevat ongeldige tekens.",
        "Ce texte contient des caractères non valables.",
        "Dieser Text enthält ungültige Zeichen.",
        "This text contains characters that are not allowed.",
    ),
    "error.postcode_format": (
        "Een postcode heeft 4 cijfers, bijvoorbeeld 2000.",
        "Un code postal compte 4 chiffres, par exemple 1300.",
        "Eine Postleitzahl hat 4 Ziffern, zum Beispiel 4700.",
        "A postcode has 4 digits, for example 2000.",
    ),
    "error.municipality_format": (
        "Vul een postcode of de naam van een gemeente in.",
        "Indiquez un code postal ou le nom d'une commune.",
        "Geben Sie eine Postleitzahl oder den Namen einer Gemeinde ein.",
        "Enter a postcode or the name of a municipality.",
    ),
    "error.place_missing": (
        "Vul een postcode of gemeente in.",
        "Indiquez un code postal ou une commune.",
        "Geben Sie eine Postleitzahl oder Gemeinde ein.",
        "Enter a postcode or municipality.",
    ),
    "error.postcode_unknown": (
        "Deze postcode bestaat niet in België.",
        "Ce code postal n'existe pas en Belgique.",
        "Diese Postleitzahl gibt es in Belgien nicht.",
        "This postcode does not exist in Belgium.",
    ),
    "error.place_unknown": (
        "Deze gemeente kennen we niet. Vul de postcode in.",
        "Nous ne connaissons pas cette commune. Indiquez le code postal.",
        "Diese Gemeinde kennen wir nicht. Geben Sie die Postleitzahl ein.",
        "We do not know this municipality. Enter the postcode.",
    ),
    "error.category": (
        "Kies waarover de melding gaat.",
        "Choisissez l'objet du signalement.",
        "Wählen Sie, worum es in der Meldung geht.",
        "Choose what the report is about.",
    ),
    "error.signals": (
        "Kies alleen uit de lijst.",
        "Choisissez uniquement dans la liste.",
        "Wählen Sie nur aus der Liste.",
        "Choose from the list only.",
    ),
    "error.photo_type": (
        "Alleen JPEG- of PNG-foto's.",
        "Uniquement des photos JPEG ou PNG.",
        "Nur JPEG- oder PNG-Fotos.",
        "JPEG or PNG photos only.",
    ),
    "error.photo_invalid": (
        "Deze foto kunnen we niet lezen.",
        "Nous ne pouvons pas lire cette photo.",
        "Dieses Foto können wir nicht lesen.",
        "We cannot read this photo.",
    ),
    "error.photo_too_large": (
        "Een foto mag hoogstens {megabytes} MB groot zijn.",
        "Une photo ne peut dépasser {megabytes} Mo.",
        "Ein Foto darf höchstens {megabytes} MB groß sein.",
        "A photo may be at most {megabytes} MB.",
    ),
    "error.photo_too_many_pixels": (
        "Deze foto heeft te veel pixels.",
        "Cette photo a trop de pixels.",
        "Dieses Foto hat zu viele Pixel.",
        "This photo has too many pixels.",
    ),
    "error.photo_too_many": (
        "U kunt hoogstens {count} foto's meesturen.",
        "Vous pouvez joindre {count} photos au maximum.",
        "Sie können höchstens {count} Fotos mitsenden.",
        "You can send at most {count} photos.",
    ),
    "error.challenge": (
        "Het formulier is verlopen of werd te snel verstuurd. Probeer opnieuw.",
        "Le formulaire a expiré ou a été envoyé trop vite. Veuillez réessayer.",
        "Das Formular ist abgelaufen oder wurde zu schnell gesendet. Bitte "
        "versuchen Sie es erneut.",
        "The form has expired or was sent too quickly. Please try again.",
    ),
    "error.rate_limited": (
        "Er komen nu veel meldingen binnen. Probeer over enkele minuten opnieuw.",
        "Beaucoup de signalements arrivent en ce moment. Réessayez dans quelques "
        "minutes.",
        "Gerade gehen viele Meldungen ein. Versuchen Sie es in einigen Minuten erneut.",
        "Many reports are coming in right now. Please try again in a few minutes.",
    ),
    "error.receipt_invalid": (
        "Deze ontvangstcode klopt niet. Controleer hem en probeer opnieuw.",
        "Ce code de réception n'est pas correct. Vérifiez-le et réessayez.",
        "Dieser Empfangscode stimmt nicht. Prüfen Sie ihn und versuchen Sie es erneut.",
        "This receipt code is not correct. Check it and try again.",
    ),
    "receipt.heading": (
        "Bedankt, uw melding is ontvangen",
        "Merci, votre signalement a été reçu",
        "Danke, Ihre Meldung ist eingegangen",
        "Thank you, your report has been received",
    ),
    "receipt.code_label": (
        "Uw ontvangstcode",
        "Votre code de réception",
        "Ihr Empfangscode",
        "Your receipt code",
    ),
    "receipt.write_down": (
        "Schrijf deze code nu op. We tonen hem maar één keer en kunnen hem niet "
        "terugvinden: we bewaren alleen een onomkeerbare afdruk ervan.",
        "Notez ce code maintenant. Il n'est affiché qu'une seule fois et nous ne "
        "pouvons pas le retrouver : nous n'en gardons qu'une empreinte "
        "irréversible.",
        "Schreiben Sie diesen Code jetzt auf. Er wird nur einmal angezeigt und wir "
        "können ihn nicht wiederherstellen: Wir speichern nur einen "
        "unumkehrbaren Fingerabdruck davon.",
        "Write this code down now. It is shown only once and we cannot recover "
        "it: we keep only an irreversible fingerprint of it.",
    ),
    "receipt.use": (
        "Met deze code kunt u uw melding opvolgen en vragen van de politie "
        "beantwoorden op de pagina ‘Mijn melding opvolgen’.",
        "Avec ce code, vous pouvez suivre votre signalement et répondre aux "
        "questions de la police sur la page « Suivre mon signalement ».",
        "Mit diesem Code können Sie Ihre Meldung verfolgen und Fragen der Polizei "
        "auf der Seite „Meine Meldung verfolgen“ beantworten.",
        "With this code you can follow your report and answer questions from the "
        "police on the page ‘Follow up my report’.",
    ),
    "receipt.close": (
        "Sluit deze pagina als u de code hebt opgeschreven, zeker op een gedeeld "
        "toestel.",
        "Fermez cette page une fois le code noté, surtout sur un appareil partagé.",
        "Schließen Sie diese Seite, wenn Sie den Code notiert haben, besonders "
        "auf einem gemeinsam genutzten Gerät.",
        "Close this page once you have written the code down, especially on a "
        "shared device.",
    ),
    "receipt.other_languages": (
        "Deze uitleg in andere talen",
        "Ces explications dans d'autres langues",
        "Diese Hinweise in anderen Sprachen",
        "These instructions in other languages",
    ),
    "followup.heading": (
        "Uw melding opvolgen",
        "Suivre votre signalement",
        "Ihre Meldung verfolgen",
        "Follow up your report",
    ),
    "followup.code_label": (
        "Ontvangstcode *",
        "Code de réception *",
        "Empfangscode *",
        "Receipt code *",
    ),
    "followup.code_hint": (
        "De code die u kreeg toen u de melding verstuurde. Hoofdletters en "
        "streepjes maken niet uit.",
        "Le code reçu lors de l'envoi du signalement. Majuscules et tirets sont "
        "sans importance.",
        "Der Code, den Sie beim Absenden der Meldung erhalten haben. Groß- und "
        "Kleinschreibung und Bindestriche spielen keine Rolle.",
        "The code you got when you sent your report. Capitals and dashes do not "
        "matter.",
    ),
    "followup.submit": (
        "Toon mijn melding",
        "Afficher mon signalement",
        "Meine Meldung anzeigen",
        "Show my report",
    ),
    "followup.category_label": ("Onderwerp", "Objet", "Thema", "Subject"),
    "followup.status_label": ("Stand van zaken", "État", "Stand", "Status"),
    "followup.outcome_label": ("Resultaat", "Résultat", "Ergebnis", "Outcome"),
    "status.received": ("Ontvangen", "Reçu", "Eingegangen", "Received"),
    "status.under_review": (
        "Wordt bekeken",
        "En cours d'examen",
        "Wird geprüft",
        "Under review",
    ),
    "status.forwarded": (
        "Doorgegeven aan de bevoegde dienst",
        "Transmis au service compétent",
        "An die zuständige Stelle weitergeleitet",
        "Passed on to the competent service",
    ),
    "status.closed": ("Afgesloten", "Clôturé", "Abgeschlossen", "Closed"),
    "outcome.site_found": (
        "Er werd een productieplaats gevonden.",
        "Un lieu de production a été découvert.",
        "Eine Produktionsstätte wurde gefunden.",
        "A production site was found.",
    ),
    "outcome.investigated_no_result": (
        "Onderzocht, zonder resultaat.",
        "Examiné, sans résultat.",
        "Untersucht, ohne Ergebnis.",
        "Investigated, without result.",
    ),
    "outcome.information_report": (
        "Bewaard als informatie voor lopend of later onderzoek.",
        "Conservé comme information pour une enquête en cours ou future.",
        "Als Information für laufende oder spätere Ermittlungen festgehalten.",
        "Kept as information for current or later investigations.",
    ),
    "outcome.duplicate": (
        "Deze plaats was al gemeld.",
        "Ce lieu avait déjà été signalé.",
        "Dieser Ort wurde bereits gemeldet.",
        "This place had already been reported.",
    ),
    "outcome.too_little_detail": (
        "Te weinig gegevens om verder te gaan.",
        "Trop peu d'éléments pour poursuivre.",
        "Zu wenige Angaben, um weiterzumachen.",
        "Too little detail to go further.",
    ),
    "followup.questions_heading": (
        "Vragen van de politie",
        "Questions de la police",
        "Fragen der Polizei",
        "Questions from the police",
    ),
    "followup.no_questions": (
        "Er zijn op dit moment geen vragen voor u.",
        "Il n'y a pas de question pour vous pour le moment.",
        "Zurzeit gibt es keine Fragen an Sie.",
        "There are no questions for you at the moment.",
    ),
    "followup.your_answer": (
        "Uw antwoord",
        "Votre réponse",
        "Ihre Antwort",
        "Your answer",
    ),
    "followup.answer_submit": (
        "Antwoord versturen",
        "Envoyer la réponse",
        "Antwort absenden",
        "Send answer",
    ),
    "followup.answer_saved": (
        "Uw antwoord is verstuurd. Bedankt.",
        "Votre réponse a été envoyée. Merci.",
        "Ihre Antwort wurde gesendet. Danke.",
        "Your answer has been sent. Thank you.",
    ),
    "followup.closed_note": (
        "Deze melding is afgesloten. Bedankt voor uw hulp.",
        "Ce signalement est clôturé. Merci pour votre aide.",
        "Diese Meldung ist abgeschlossen. Danke für Ihre Hilfe.",
        "This report is closed. Thank you for your help.",
    ),
    "followup.leave": (
        "Sluit deze pagina als u klaar bent.",
        "Fermez cette page lorsque vous avez terminé.",
        "Schließen Sie diese Seite, wenn Sie fertig sind.",
        "Close this page when you are done.",
    ),
}

MESSAGES: dict[str, dict[Lang, str]] = {
    key: dict(zip(LANGUAGES, row, strict=True)) for key, row in _ROWS.items()
}


def t(lang: str, key: str, **values: Any) -> str:
    """Returns the text for a key in a language (Dutch for an unknown language)."""
    texts = MESSAGES[key]
    text = texts.get(lang) or texts[DEFAULT_LANGUAGE]  # type: ignore[call-overload]
    return text.format(**values) if values else text


def _parse_accept_language(header: str) -> list[tuple[float, int, str]]:
    ranked = []
    for position, item in enumerate(header.split(",")[:20]):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.strip().split("-")[0].casefold()
        if primary and quality > 0:
            ranked.append((-quality, position, primary))
    return sorted(ranked)


def pick_language(accept_language: str | None, query_param: str | None) -> Lang:
    """Chooses the language: `?lang=` first, then the browser's preference, then nl."""
    if query_param and query_param.casefold() in LANGUAGES:
        return query_param.casefold()  # type: ignore[return-value]
    for _quality, _position, primary in _parse_accept_language(accept_language or ""):
        if primary in LANGUAGES:
            return primary  # type: ignore[return-value]
    return DEFAULT_LANGUAGE


@pass_context
def _translate(context: Context, key: str, **values: Any) -> str:
    return t(context["lang"], key, **values)


def template_environment(*, templates_dir: Path = TEMPLATES_DIR) -> Environment:
    """Returns the Jinja2 environment for the tip line's pages, with `_` bound."""
    environment = Environment(
        loader=FileSystemLoader(templates_dir),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.globals.update(
        _=_translate, t=t, LANGUAGES=LANGUAGES, NAMES=LANGUAGE_NAMES
    )
    return environment
