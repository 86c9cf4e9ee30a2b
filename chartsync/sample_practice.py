"""A small, realistic (fictional) Japanese practice for the demo: FHIR R4 transaction Bundles.

Every name, date and note here is invented.
"""

from __future__ import annotations

import base64
from typing import Any

PATIENTS: list[dict[str, Any]] = [
    {"family": "山田", "given": "太郎", "kana": ("ヤマダ", "タロウ"), "gender": "male",
     "birthDate": "1958-04-12", "insurer": "06130011"},
    {"family": "佐藤", "given": "花子", "kana": ("サトウ", "ハナコ"), "gender": "female",
     "birthDate": "1972-09-30", "insurer": "06130012"},
    {"family": "鈴木", "given": "一郎", "kana": ("スズキ", "イチロウ"), "gender": "male",
     "birthDate": "1945-01-08", "insurer": "39130015"},
    {"family": "高橋", "given": "美咲", "kana": ("タカハシ", "ミサキ"), "gender": "female",
     "birthDate": "1990-06-21", "insurer": "06130019"},
    {"family": "田中", "given": "健太", "kana": ("タナカ", "ケンタ"), "gender": "male",
     "birthDate": "1983-11-02", "insurer": "01130020"},
]

ALLERGIES = [("J7F7111190", "さば", "food"), ("1149019", "ペニシリン系抗生物質", "medication"),
             ("J7F1010000", "卵", "food"), ("1141007", "アスピリン", "medication"),
             ("J7F4010000", "そば", "food")]
DRUGS = [("2171022F1023", "アムロジピン錠5mg", "1日1回 朝食後 1錠"),
         ("3969007F1021", "メトホルミン塩酸塩錠250mg", "1日2回 朝夕食後 各1錠"),
         ("2189016F1026", "ロスバスタチン錠2.5mg", "1日1回 夕食後 1錠"),
         ("1149019F1020", "ロキソプロフェンNa錠60mg", "疼痛時 1錠 1日3回まで"),
         ("2329023F1020", "ファモチジン錠20mg", "1日2回 朝夕食後 各1錠")]
CONDITIONS = [("I10", "本態性高血圧症"), ("E119", "2型糖尿病"), ("E785", "脂質異常症"),
              ("M545", "腰痛症"), ("K210", "逆流性食道炎")]
NOTES = ["初診。血圧 152/94。減塩指導を行った。次回2週間後。",
         "HbA1c 7.4%。食事療法を継続、メトホルミン開始。",
         "LDL 168 mg/dL。運動療法の説明。",
         "腰痛増悪。湿布とロキソプロフェンを処方。",
         "胸やけ持続。ファモチジン処方、就寝前の食事を控えるよう指導。"]


def _ref(full_url: str) -> dict[str, str]:
    return {"reference": full_url}


def patient_bundle(i: int, date: str = "2026-11-24") -> dict[str, Any]:
    """A transaction Bundle: one patient with an encounter, allergy, condition,
    blood-pressure observation, prescription and visit note."""
    p = PATIENTS[i % len(PATIENTS)]
    pid, eid = f"urn:uuid:00000000-0000-4000-8000-{i:012d}", \
        f"urn:uuid:00000000-0000-4000-9000-{i:012d}"
    code, substance, category = ALLERGIES[i % len(ALLERGIES)]
    drug, drug_name, dosage = DRUGS[i % len(DRUGS)]
    icd, diagnosis = CONDITIONS[i % len(CONDITIONS)]
    note = NOTES[i % len(NOTES)]
    entries: list[dict[str, Any]] = [
        {"fullUrl": pid, "request": {"method": "POST", "url": "Patient"}, "resource": {
            "resourceType": "Patient",
            "identifier": [{"system": "urn:oid:1.2.392.100495.20.3.51.1",
                            "value": f"{p['insurer']}-{1000 + i}"}],
            "name": [{"use": "official", "family": p["family"], "given": [p["given"]]},
                     {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/"
                                     "iso21090-EN-representation", "valueCode": "SYL"}],
                      "family": p["kana"][0], "given": [p["kana"][1]]}],
            "gender": p["gender"], "birthDate": p["birthDate"]}},
        {"fullUrl": eid, "request": {"method": "POST", "url": "Encounter"}, "resource": {
            "resourceType": "Encounter", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                      "code": "AMB", "display": "外来"},
            "subject": _ref(pid), "period": {"start": f"{date}T09:30:00+09:00",
                                             "end": f"{date}T09:45:00+09:00"}}},
        {"request": {"method": "POST", "url": "AllergyIntolerance"}, "resource": {
            "resourceType": "AllergyIntolerance",
            "clinicalStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                "code": "active"}]},
            "category": [category], "criticality": "low",
            "code": {"coding": [{"system": "urn:oid:1.2.392.200119.4.403.1", "code": code,
                                 "display": substance}], "text": substance},
            "patient": _ref(pid), "recordedDate": date}},
        {"request": {"method": "POST", "url": "Condition"}, "resource": {
            "resourceType": "Condition",
            "clinicalStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                "code": "active"}]},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": icd,
                                 "display": diagnosis}], "text": diagnosis},
            "subject": _ref(pid), "encounter": _ref(eid), "recordedDate": date}},
        {"request": {"method": "POST", "url": "Observation"}, "resource": {
            "resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6",
                                 "display": "収縮期血圧"}]},
            "subject": _ref(pid), "encounter": _ref(eid),
            "effectiveDateTime": f"{date}T09:35:00+09:00",
            "valueQuantity": {"value": 128 + 3 * i, "unit": "mmHg",
                              "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}},
        {"request": {"method": "POST", "url": "MedicationRequest"}, "resource": {
            "resourceType": "MedicationRequest", "status": "active", "intent": "order",
            "medicationCodeableConcept": {"coding": [{
                "system": "urn:oid:1.2.392.200119.4.403.1", "code": drug,
                "display": drug_name}], "text": drug_name},
            "subject": _ref(pid), "encounter": _ref(eid), "authoredOn": date,
            "dosageInstruction": [{"text": dosage}]}},
        {"request": {"method": "POST", "url": "DocumentReference"}, "resource": {
            "resourceType": "DocumentReference", "status": "current",
            "type": {"text": "経過記録"}, "subject": _ref(pid), "date": f"{date}T09:45:00+09:00",
            "content": [{"attachment": {
                "contentType": "text/plain; charset=utf-8",
                "data": base64.b64encode(note.encode()).decode()}}]}},
    ]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}
